/**
 * The files this program keeps between runs: where they live (the user's cache and state
 * directories) and how they are written (atomically, readable by the owner only). The upload
 * sessions, the blob info cache and a pull's partial state all use it.
 */
import { NAME } from "./version.ts";

/** A cache can be deleted at any time; state lets an interrupted run continue. */
export type UserDirKind = "cache" | "state";

/** Each platform's place for each kind: XDG first, then the platform's own convention. */
const PLACES: Record<UserDirKind, { xdg: string; windows: string; darwin: string; home: string }> =
  {
    cache: {
      xdg: "XDG_CACHE_HOME",
      windows: "cache",
      darwin: "Library/Caches",
      home: ".cache",
    },
    state: {
      xdg: "XDG_STATE_HOME",
      windows: "state",
      darwin: "Library/Application Support",
      home: ".local/state",
    },
  };

/**
 * This program's directory of that kind, or undefined when the environment names no home
 * (then callers keep what they would save in memory only).
 */
export function userDir(
  kind: UserDirKind,
  env: (name: string) => string | undefined,
): string | undefined {
  const place = PLACES[kind];
  const xdg = env(place.xdg);
  if (xdg) return `${xdg}/${NAME}`;
  if (Deno.build.os === "windows") {
    const local = env("LOCALAPPDATA");
    return local ? `${local}\\${NAME}\\${place.windows}` : undefined;
  }
  const home = env("HOME");
  if (!home) return undefined;
  if (Deno.build.os === "darwin") return `${home}/${place.darwin}/${NAME}`;
  return `${home}/${place.home}/${NAME}`;
}

/**
 * Replaces the file at `path` whole, readable by the owner only: written to a temporary file
 * beside it, then renamed over it, so a reader (or a run killed half-way) sees the old file or
 * the new one, never a part. A write that fails removes its temporary file: saves repeat, and
 * each failed one would otherwise leave a file behind.
 */
export async function writeFileAtomic(path: string, data: Uint8Array | string): Promise<void> {
  const temp = `${path}.${crypto.randomUUID()}.tmp`;
  try {
    if (typeof data === "string") await Deno.writeTextFile(temp, data, { mode: 0o600 });
    else await Deno.writeFile(temp, data, { mode: 0o600 });
    await Deno.rename(temp, path);
  } catch (error) {
    await Deno.remove(temp).catch(() => {});
    throw error;
  }
}
