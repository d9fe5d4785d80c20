/**
 * The Docker daemon step of the test run's setup, with stand-ins for the client and the daemon:
 * the client "answers" once the daemon has written its marker file.
 */
import { aptInstall, dockerAnswers, ensureDockerDaemon } from "../helpers/apt_install.ts";
import { assert, assertEquals } from "../helpers/assert.ts";

interface Stand {
  dir: string;
  docker: string;
  dockerd: string;
  marker: string;
}

/** A client that succeeds once `marker` exists, and a daemon that writes its arguments there. */
async function stands(): Promise<Stand> {
  const dir = await Deno.makeTempDir({ prefix: "dip-apt-test-" });
  const marker = `${dir}/started`;
  const docker = `${dir}/docker`;
  const dockerd = `${dir}/dockerd`;
  await Deno.writeTextFile(docker, `#!/bin/sh\n[ -f '${marker}' ]\n`, { mode: 0o755 });
  await Deno.writeTextFile(dockerd, `#!/bin/sh\necho "$*" > '${marker}'\n`, { mode: 0o755 });
  // Not root: sudo -n, whose stand-in drops -n and runs the rest.
  await Deno.mkdir(`${dir}/bin`);
  await Deno.writeTextFile(`${dir}/bin/sudo`, '#!/bin/sh\n[ "$1" = -n ] && shift\nexec "$@"\n', {
    mode: 0o755,
  });
  return { dir, docker, dockerd, marker };
}

async function withPath<T>(dir: string, fn: () => Promise<T>): Promise<T> {
  const path = Deno.env.get("PATH") ?? "";
  Deno.env.set("PATH", `${dir}:${path}`);
  try {
    return await fn();
  } finally {
    Deno.env.set("PATH", path);
  }
}

Deno.test("ensureDockerDaemon starts dockerd with container-safe flags when none answers", async () => {
  const s = await stands();
  try {
    assert(!(await dockerAnswers(s.docker)));
    const lines: string[] = [];
    const up = await withPath(`${s.dir}/bin`, () =>
      ensureDockerDaemon({
        docker: s.docker,
        dockerd: s.dockerd,
        logFile: `${s.dir}/dockerd.log`,
        timeoutMs: 10_000,
        say: (line) => lines.push(line),
      }));
    assert(up);
    assertEquals(
      (await Deno.readTextFile(s.marker)).trim(),
      "--storage-driver=vfs --iptables=false --ip-masq=false --bridge=none",
    );
    assertEquals(lines.length, 1, lines.join("\n"));
    assert(lines[0]!.startsWith("No Docker daemon answers: starting "), lines[0]);
  } finally {
    await Deno.remove(s.dir, { recursive: true });
  }
});

Deno.test("ensureDockerDaemon leaves a daemon that answers alone; false without dockerd", async () => {
  const s = await stands();
  try {
    await Deno.writeTextFile(s.marker, "already up\n");
    assert(await ensureDockerDaemon({ docker: s.docker, dockerd: s.dockerd }));
    assertEquals(await Deno.readTextFile(s.marker), "already up\n");

    await Deno.remove(s.marker);
    const missing = `${s.dir}/no-such-dockerd`;
    assert(!(await ensureDockerDaemon({ docker: s.docker, dockerd: missing, timeoutMs: 1000 })));
  } finally {
    await Deno.remove(s.dir, { recursive: true });
  }
});

Deno.test("aptInstall adds a foreign package's architecture to dpkg before apt-get update", async () => {
  const s = await stands();
  try {
    // Stand-ins that record their arguments, in the order they ran.
    const log = `${s.dir}/log`;
    for (const tool of ["dpkg", "apt-get"]) {
      await Deno.writeTextFile(
        `${s.dir}/bin/${tool}`,
        `#!/bin/sh\necho "${tool} $*" >> '${log}'\n`,
        {
          mode: 0o755,
        },
      );
    }
    assert(await withPath(`${s.dir}/bin`, () => aptInstall(["qemu-user-static", "libc6:arm64"])));
    const ran = (await Deno.readTextFile(log)).trim().split("\n");
    assertEquals(ran, [
      "dpkg --add-architecture arm64",
      "apt-get update -qq",
      "apt-get install -y -qq --no-install-recommends qemu-user-static libc6:arm64",
    ]);
  } finally {
    await Deno.remove(s.dir, { recursive: true });
  }
});
