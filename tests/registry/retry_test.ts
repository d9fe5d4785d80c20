import { NetworkError, RegistryError } from "../../src/registry/registry_error.ts";
import { backoffDelay, isRetryable, withRetries } from "../../src/registry/retry.ts";
import { UploadSessionLostError } from "../../src/registry/upload_errors.ts";
import { assert, assertEquals, assertRejects } from "../helpers/assert.ts";

const unavailable = (retryAfterMs?: number) =>
  new RegistryError({
    method: "PUT",
    url: "https://r.example/v2/a/blobs/uploads/u",
    status: 503,
    ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
  });
const badRequest = () =>
  new RegistryError({ method: "PUT", url: "https://r.example/", status: 400 });

Deno.test("backoffDelay doubles each retry with jitter between half and all of the step", () => {
  const cases: [number, number, number][] = [
    // retry, random(), expected, with base 500 ms and cap 30 s
    [1, 0, 250],
    [1, 0.999999, 500],
    [1, 0.5, 375],
    [2, 0, 500],
    [2, 0.999999, 1000],
    [3, 0, 1000],
    [4, 0.999999, 4000],
    [7, 0, 15_000],
    [7, 0.999999, 30_000],
    [20, 0, 15_000],
    [20, 0.999999, 30_000],
  ];
  for (const [retry, r, expected] of cases) {
    assertEquals(
      backoffDelay(retry, unavailable(), { random: () => r }),
      expected,
      `${retry} ${r}`,
    );
  }
});

Deno.test("backoffDelay honours baseDelayMs and maxDelayMs", () => {
  const options = { baseDelayMs: 100, maxDelayMs: 1000, random: () => 0.999999 };
  assertEquals(backoffDelay(1, new Error("x"), options), 100);
  assertEquals(backoffDelay(4, new Error("x"), options), 800);
  assertEquals(backoffDelay(5, new Error("x"), options), 1000);
  assertEquals(backoffDelay(5, new Error("x"), { ...options, random: () => 0 }), 500);
});

Deno.test("backoffDelay uses Retry-After, capped", () => {
  const random = () => 0;
  assertEquals(backoffDelay(1, unavailable(7_000), { random }), 7_000);
  assertEquals(backoffDelay(5, unavailable(0), { random }), 0);
  assertEquals(backoffDelay(1, unavailable(3_600_000), { random }), 300_000);
  assertEquals(backoffDelay(1, unavailable(9_000), { random, maxRetryAfterMs: 2_000 }), 2_000);
});

function recorder() {
  const delays: number[] = [];
  const sleep = (ms: number) => {
    delays.push(ms);
    return Promise.resolve();
  };
  return { delays, sleep };
}

Deno.test("withRetries succeeds after temporary failures, waiting between attempts", async () => {
  const { delays, sleep } = recorder();
  const attempts: number[] = [];
  const retries: number[] = [];
  const result = await withRetries((n) => {
    attempts.push(n);
    if (n === 1) return Promise.reject(unavailable());
    if (n === 2) {
      return Promise.reject(
        new NetworkError("PUT", "https://r.example/", "reset", { temporary: true }),
      );
    }
    if (n === 3) return Promise.reject(unavailable(1234));
    return Promise.resolve("done");
  }, { retries: 3, sleep, random: () => 0, onRetry: (info) => retries.push(info.attempt) });
  assertEquals(result, "done");
  assertEquals(attempts, [1, 2, 3, 4]);
  assertEquals(retries, [2, 3, 4]);
  assertEquals(delays, [250, 500, 1234]);
});

Deno.test("withRetries gives up after `retries` retries with the last error", async () => {
  for (const retries of [0, 1, 3]) {
    const { delays, sleep } = recorder();
    let calls = 0;
    const last = unavailable();
    const error = await assertRejects(
      () =>
        withRetries(() => {
          calls++;
          return Promise.reject(calls === retries + 1 ? last : unavailable());
        }, { retries, sleep, random: () => 0 }),
      RegistryError,
    );
    // Identity, not deep equality: every 503 error here has the same fields.
    assert(error === last, "not the last error");
    assertEquals(calls, retries + 1, `retries ${retries}`);
    assertEquals(delays.length, retries);
  }
});

Deno.test("withRetries does not retry errors that retrying cannot fix", async () => {
  const cases: Error[] = [
    badRequest(),
    new RegistryError({ method: "GET", url: "https://r.example/", status: 404 }),
    new NetworkError("GET", "https://r.example/", "certificate", { temporary: false }),
    new Error("plain"),
    new TypeError("bug"),
  ];
  for (const failure of cases) {
    const { delays, sleep } = recorder();
    let calls = 0;
    const onRetry = () => {
      throw new Error("onRetry must not be called");
    };
    const error = await assertRejects(() =>
      withRetries(() => {
        calls++;
        return Promise.reject(failure);
      }, { retries: 5, sleep, onRetry })
    );
    assert(error === failure, failure.message);
    assertEquals(calls, 1, failure.message);
    assertEquals(delays, []);
  }
});

Deno.test("withRetries reports each retry with its attempt number, delay and error", async () => {
  const { sleep } = recorder();
  const seen: { attempt: number; delayMs: number; error: Error }[] = [];
  const failure = unavailable();
  let calls = 0;
  await withRetries(() => {
    calls++;
    return calls < 3 ? Promise.reject(failure) : Promise.resolve(calls);
  }, { retries: 5, sleep, random: () => 0, baseDelayMs: 10, onRetry: (info) => seen.push(info) });
  assertEquals(seen.map(({ attempt, delayMs }) => [attempt, delayMs]), [[2, 5], [3, 10]]);
  assert(seen.every((info) => info.error === failure), "onRetry got another error");
});

Deno.test("withRetries stops when the signal aborts during the wait", async () => {
  const controller = new AbortController();
  const reason = new Error("cancelled");
  let calls = 0;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const error = await assertRejects(() =>
    withRetries(() => {
      calls++;
      return Promise.reject(unavailable());
    }, {
      retries: 5,
      baseDelayMs: 60_000,
      signal: controller.signal,
      onRetry: () => {
        timer = setTimeout(() => controller.abort(reason), 5);
      },
    })
  );
  clearTimeout(timer);
  assert(error === reason, error.message);
  assertEquals(calls, 1);
});

Deno.test("withRetries does not retry once the signal has aborted", async () => {
  const { delays, sleep } = recorder();
  const controller = new AbortController();
  let calls = 0;
  const failure = unavailable();
  const error = await assertRejects(() =>
    withRetries(() => {
      calls++;
      controller.abort();
      return Promise.reject(failure);
    }, { retries: 5, sleep, signal: controller.signal })
  );
  assert(error === failure, error.message);
  assertEquals(calls, 1);
  assertEquals(delays, []);
});

Deno.test("isRetryable is the answer table's retry row, for the error itself only", () => {
  const url = "https://r.example/v2/a/manifests/1";
  const answer = (status: number, code?: string) =>
    new RegistryError({
      method: "GET",
      url,
      status,
      ...(code ? { codes: [{ code, message: "" }] } : {}),
    });
  assertEquals(isRetryable(answer(503)), true);
  assertEquals(isRetryable(answer(403, "TOOMANYREQUESTS")), true);
  assertEquals(isRetryable(answer(413)), false);
  assertEquals(isRetryable(answer(401)), false);
  assertEquals(isRetryable(answer(501)), false);
  assertEquals(isRetryable(new NetworkError("GET", url, "reset", { temporary: true })), true);
  assertEquals(isRetryable(new NetworkError("GET", url, "TLS", { temporary: false })), false);
  // A lost session is the blob's to start again (push's blob attempts), not a request's retry.
  assertEquals(isRetryable(new UploadSessionLostError("lost", { cause: answer(503) })), false);
  assertEquals(isRetryable(new Error("wrapped", { cause: answer(503) })), false);
});
