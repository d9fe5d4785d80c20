/**
 * Minimal assertions for tests (JSR, and with it @std/assert, is unreachable here).
 *
 * @module
 */

/** Thrown when an assertion fails. */
export class AssertionError extends Error {
  override name = "AssertionError";
}

/** Fails unless `condition` is truthy. */
export function assert(condition: unknown, message = "Assertion failed"): asserts condition {
  if (!condition) throw new AssertionError(message);
}

/**
 * Fails unless `actual` and `expected` are deeply equal: primitives by `Object.is`, arrays and
 * typed arrays element by element, Maps and Sets by content, Dates by time, other objects by
 * their own enumerable keys (a key holding `undefined` differs from a missing key).
 */
export function assertEquals<T>(
  actual: unknown,
  expected: T,
  message?: string,
): asserts actual is T {
  if (equal(actual, expected)) return;
  const detail = `Values are not equal.\n  actual:   ${show(actual)}\n  expected: ${
    show(expected)
  }`;
  throw new AssertionError(message === undefined ? detail : `${message}\n${detail}`);
}

/** Fails when `actual` and `expected` are deeply equal. */
export function assertNotEquals(actual: unknown, expected: unknown, message?: string): void {
  if (!equal(actual, expected)) return;
  throw new AssertionError(message ?? `Expected a value other than ${show(expected)}`);
}

/** Fails unless `text` contains `part`. */
export function assertStringIncludes(text: string, part: string, message?: string): void {
  if (text.includes(part)) return;
  throw new AssertionError(message ?? `Expected ${show(text)} to include ${show(part)}`);
}

type ErrorClass<E extends Error> = abstract new (...args: never[]) => E;

/**
 * Fails unless `fn` throws; with `ErrorClass`, an instance of it; with `msgIncludes`, a message
 * containing that text. Returns the error for further checks.
 */
export function assertThrows<E extends Error = Error>(
  fn: () => unknown,
  ErrorClass?: ErrorClass<E>,
  msgIncludes?: string,
): E {
  try {
    fn();
  } catch (error) {
    return checkError(error, ErrorClass, msgIncludes);
  }
  throw new AssertionError("Expected the function to throw");
}

/** Like {@linkcode assertThrows} for a function returning a promise that should reject. */
export async function assertRejects<E extends Error = Error>(
  fn: () => PromiseLike<unknown>,
  ErrorClass?: ErrorClass<E>,
  msgIncludes?: string,
): Promise<E> {
  try {
    await fn();
  } catch (error) {
    return checkError(error, ErrorClass, msgIncludes);
  }
  throw new AssertionError("Expected the promise to reject");
}

function checkError<E extends Error>(
  error: unknown,
  ErrorClass: ErrorClass<E> | undefined,
  msgIncludes: string | undefined,
): E {
  if (!(error instanceof Error)) {
    throw new AssertionError(`Expected an Error to be thrown, got ${show(error)}`);
  }
  if (ErrorClass !== undefined && !(error instanceof ErrorClass)) {
    throw new AssertionError(
      `Expected ${ErrorClass.name} to be thrown, got ${error.name}: ${error.message}`,
      { cause: error },
    );
  }
  if (msgIncludes !== undefined && !error.message.includes(msgIncludes)) {
    throw new AssertionError(
      `Expected the error message to include ${show(msgIncludes)}, got ${show(error.message)}`,
      { cause: error },
    );
  }
  return error as E;
}

function equal(a: unknown, b: unknown): boolean {
  if (Object.is(a, b)) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Object.getPrototypeOf(a) !== Object.getPrototypeOf(b)) return false;
  if (a instanceof Date) return a.getTime() === (b as Date).getTime();
  if (ArrayBuffer.isView(a)) {
    const x = new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
    const bv = b as ArrayBufferView;
    const y = new Uint8Array(bv.buffer, bv.byteOffset, bv.byteLength);
    return x.length === y.length && x.every((byte, i) => byte === y[i]);
  }
  if (a instanceof Map) {
    const m = b as Map<unknown, unknown>;
    if (a.size !== m.size) return false;
    for (const [key, value] of a) if (!m.has(key) || !equal(value, m.get(key))) return false;
    return true;
  }
  if (a instanceof Set) {
    const s = b as Set<unknown>;
    return a.size === s.size && [...a].every((value) => s.has(value));
  }
  if (Array.isArray(a)) {
    const y = b as unknown[];
    return a.length === y.length && a.every((value, i) => equal(value, y[i]));
  }
  const keysA = Object.keys(a);
  const keysB = Object.keys(b);
  if (keysA.length !== keysB.length) return false;
  const recordA = a as Record<string, unknown>;
  const recordB = b as Record<string, unknown>;
  return keysA.every((key) => Object.hasOwn(recordB, key) && equal(recordA[key], recordB[key]));
}

function show(value: unknown): string {
  return Deno.inspect(value, { depth: 10, colors: false, strAbbreviateSize: 2000 });
}
