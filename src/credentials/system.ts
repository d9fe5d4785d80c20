/** The real system behind credential lookups: files, environment, credential helpers. */
import type { CredentialSystem, HelperResult } from "./docker_config.ts";

/** Credential helpers answer within this time or are treated as failed. */
const HELPER_TIMEOUT_MS = 30_000;

export function realCredentialSystem(env: (name: string) => string | undefined): CredentialSystem {
  return {
    env,
    readTextFile: async (path) => {
      try {
        return await Deno.readTextFile(path);
      } catch (error) {
        if (error instanceof Deno.errors.NotFound) return undefined;
        // "Is a directory (os error 21): readfile '…'": the reason, without the path again.
        const reason = error instanceof Error ? error.message.replace(/: \w+ '.*'$/s, "") : "";
        throw new Error(`Cannot read docker config ${path}${reason ? `: ${reason}` : ""}`, {
          cause: error,
        });
      }
    },
    runHelper,
  };
}

async function runHelper(helper: string, serverUrl: string): Promise<HelperResult> {
  const program = `docker-credential-${helper}`;
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command(program, {
      args: ["get"],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
      signal: AbortSignal.timeout(HELPER_TIMEOUT_MS),
    }).spawn();
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      return { ok: false, notFound: false, message: "not on PATH" };
    }
    throw error;
  }
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(serverUrl));
  await writer.close();
  const output = await child.output();
  const stdout = new TextDecoder().decode(output.stdout);
  if (output.success) return { ok: true, stdout };
  // Helpers print this (on stdout) when they hold nothing for the server.
  const text = `${stdout}\n${new TextDecoder().decode(output.stderr)}`.trim();
  const notFound = /credentials not found/i.test(text);
  return { ok: false, notFound, message: text.split("\n")[0] || `exit code ${output.code}` };
}
