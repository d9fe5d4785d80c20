/**
 * The real clients, for tests that hand our archives to them and theirs to us: Docker (Debian's
 * `/usr/bin/docker`, talking to the daemon `deno task test` or `.ci/run` started) and podman
 * (with a store of its own in a temporary directory, so the system's images are never touched).
 *
 * Docker's store is the machine's: every image a test makes carries a name unique to the test
 * run (and content seeded from it), and {@linkcode DockerImages} removes them all at the end.
 *
 * @module
 */
import { dockerAnswers } from "./apt_install.ts";
import { run, type RunOptions, type RunResult } from "./command.ts";
import { DOCKER_TOOLS } from "./tools.ts";

/** Debian's Docker client: another `docker` may come first on PATH. */
export const DOCKER = "/usr/bin/docker";

/** What a test that runs Docker declares: the client and the daemon. */
export const DOCKER_TEST_TOOLS: readonly string[] = DOCKER_TOOLS;

/** What a test that runs podman declares. */
export const PODMAN_TEST_TOOLS: readonly string[] = ["podman"];

/** `docker args…`; throws with the command line and stderr when it fails. */
export function docker(args: string[], options: RunOptions = {}): Promise<RunResult> {
  return run(DOCKER, args, options);
}

/** A name no earlier run left behind: `dip-test-<random>`, for images and seeds. */
export function uniqueName(prefix = "dip-test"): string {
  return `${prefix}-${crypto.randomUUID().slice(0, 8)}`;
}

/** What `docker image inspect` (or podman's) says of an image, the parts the tests compare. */
export interface InspectedImage {
  /** The image ID: the config's digest, `sha256:…`. */
  id: string;
  /** `RootFS.Layers`: the diff IDs. */
  diffIds: string[];
  architecture: string;
  os: string;
}

function parseInspect(stdout: string, ref: string): InspectedImage {
  const [image] = JSON.parse(stdout) as {
    Id: string;
    RootFS: { Layers: string[] };
    Architecture: string;
    Os: string;
  }[];
  if (image === undefined) throw new Error(`No image ${ref} in the inspect output: ${stdout}`);
  const id = image.Id.startsWith("sha256:") ? image.Id : `sha256:${image.Id}`;
  return { id, diffIds: image.RootFS.Layers, architecture: image.Architecture, os: image.Os };
}

/**
 * The Docker images a test made, removed (`docker rmi -f`) when it ends. Fails at the start,
 * with what to do, when no daemon answers.
 *
 * @example
 * ```ts ignore
 * await using images = await dockerImages();
 * await images.load(archive); // its RepoTags are removed at the end
 * images.track("127.0.0.1:5000/app:1"); // before `docker pull`
 * ```
 */
export class DockerImages implements AsyncDisposable {
  readonly #refs = new Set<string>();

  /** Removes `ref` at the end (call it before the command that creates it). */
  track(ref: string): string {
    this.#refs.add(ref);
    return ref;
  }

  /** `docker load -i path`; returns the names it loaded, each tracked. */
  async load(path: string): Promise<string[]> {
    return this.#loaded((await docker(["load", "-i", path])).stdout);
  }

  /** Tracks the names in `docker load` output ("Loaded image: NAME"). */
  loadedFrom(stdout: string): string[] {
    return this.#loaded(stdout);
  }

  #loaded(stdout: string): string[] {
    const names = [...stdout.matchAll(/^Loaded image(?: ID)?: (\S+)$/gm)].map((m) => m[1]!);
    for (const name of names) this.#refs.add(name);
    return names;
  }

  /** `docker pull ref` (with `--platform` when given), tracked. */
  async pull(ref: string, platform?: string): Promise<void> {
    this.track(ref);
    await docker(["pull", "-q", ...(platform === undefined ? [] : ["--platform", platform]), ref]);
  }

  /** `docker image inspect ref`. */
  async inspect(ref: string): Promise<InspectedImage> {
    return parseInspect((await docker(["image", "inspect", ref])).stdout, ref);
  }

  /** Removes `ref` now (so that a pull after it has to download). */
  async remove(...refs: string[]): Promise<void> {
    await docker(["rmi", "-f", ...refs]);
    for (const ref of refs) this.#refs.delete(ref);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    if (this.#refs.size === 0) return;
    // Some may be gone already (removed by ID with another tag): remove each on its own.
    for (const ref of this.#refs) {
      await new Deno.Command(DOCKER, { args: ["rmi", "-f", ref], stdout: "null", stderr: "null" })
        .output();
    }
    this.#refs.clear();
  }
}

/** A {@linkcode DockerImages} scope, after checking that the daemon answers. */
export async function dockerImages(): Promise<DockerImages> {
  if (!(await dockerAnswers(DOCKER))) {
    // Its own words: no daemon, or one this user may not talk to (not in the docker group).
    const version = await new Deno.Command(DOCKER, {
      args: ["version", "--format", "{{.Server.Version}}"],
      stdout: "null",
      stderr: "piped",
    }).output();
    const said = new TextDecoder().decode(version.stderr).trim().split("\n")[0] ?? "";
    throw new Error(
      `No Docker daemon answers ${DOCKER} info (${said}): run the tests through ` +
        "`deno task test`, which starts one when it can, or start it: sudo dockerd " +
        "--storage-driver=vfs --iptables=false --ip-masq=false --bridge=none &",
    );
  }
  return new DockerImages();
}

/**
 * podman with a store in a temporary directory (vfs, which needs no kernel overlay support),
 * removed at the end. `--tls-verify=false` is the caller's to add: podman, unlike Docker, does
 * not treat 127.0.0.0/8 as an insecure registry.
 */
export class Podman implements AsyncDisposable {
  readonly dir: string;

  private constructor(dir: string) {
    this.dir = dir;
  }

  /** A podman with a new empty store. */
  static async start(): Promise<Podman> {
    return new Podman(await Deno.makeTempDir({ prefix: "dip-podman-" }));
  }

  /** The arguments that point podman at this store, for a shell pipeline. */
  get globalArgs(): string[] {
    return [
      "--root",
      `${this.dir}/root`,
      "--runroot",
      `${this.dir}/runroot`,
      // libpod's own state would go to /run/libpod otherwise.
      "--tmpdir",
      `${this.dir}/tmp`,
      "--storage-driver",
      "vfs",
      "--events-backend",
      "none",
      "--cgroup-manager",
      "cgroupfs",
    ];
  }

  /** `podman <store> args…`. */
  run(args: string[], options: RunOptions = {}): Promise<RunResult> {
    return run("podman", [...this.globalArgs, ...args], {
      ...options,
      // Its temporary copies go under our directory too.
      env: { TMPDIR: this.dir, ...options.env },
    });
  }

  /** `podman load -i path`; the names it loaded. */
  async load(path: string): Promise<string[]> {
    const { stdout } = await this.run(["load", "-q", "-i", path]);
    return [...stdout.matchAll(/^Loaded image(?:\(s\))?: (.+)$/gm)].flatMap((m) =>
      m[1]!.split(",").map((name) => name.trim())
    );
  }

  /** `podman image inspect ref`. */
  async inspect(ref: string): Promise<InspectedImage> {
    return parseInspect((await this.run(["image", "inspect", ref])).stdout, ref);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await Deno.remove(this.dir, { recursive: true }).catch(() => {});
  }
}
