/**
 * docker-image-pusher: push a container image from a tar archive straight into a registry.
 *
 * ```sh
 * deno run -A main.ts -r registry.example.com/team/app:1.0 -f app.tar -u user --password-stdin
 * ```
 *
 * @module
 */
import { main } from "./src/cli/main.ts";
import { readHiddenLine } from "./src/cli/password_input.ts";

if (import.meta.main) {
  const encoder = new TextEncoder();
  const write = (stream: typeof Deno.stdout) => (text: string) => {
    const bytes = encoder.encode(text);
    for (let at = 0; at < bytes.length;) at += stream.writeSync(bytes.subarray(at));
  };
  // First Ctrl-C (or SIGTERM) stops in-flight requests and exits 130; a second exits at once.
  const controller = new AbortController();
  const onSignal = () => {
    if (controller.signal.aborted) Deno.exit(130);
    controller.abort(new DOMException("Interrupted", "AbortError"));
  };
  const signals: Deno.Signal[] = Deno.build.os === "windows" ? ["SIGINT"] : ["SIGINT", "SIGTERM"];
  for (const signal of signals) Deno.addSignalListener(signal, onSignal);

  const code = await main(Deno.args, {
    env: (name) => Deno.env.get(name),
    stdin: () => Deno.stdin.readable,
    readStdin: async () =>
      new TextDecoder().decode(await new Response(Deno.stdin.readable).arrayBuffer()),
    stdinIsTerminal: Deno.stdin.isTerminal(),
    promptPassword: (prompt) =>
      readHiddenLine(prompt, {
        setRaw: (raw) => Deno.stdin.setRaw(raw),
        read: (buffer) => Deno.stdin.read(buffer),
        write: write(Deno.stderr),
      }).catch((error) => {
        // Raw mode turns Ctrl-C into a byte, not a signal: interrupt as the signal would.
        if (error instanceof DOMException && error.name === "AbortError") controller.abort(error);
        throw error;
      }),
    writeOut: write(Deno.stdout),
    stdoutIsTerminal: Deno.stdout.isTerminal(),
    writeErr: write(Deno.stderr),
    stderrIsTerminal: Deno.stderr.isTerminal(),
    noColor: Deno.noColor,
    signal: controller.signal,
  });
  for (const signal of signals) Deno.removeSignalListener(signal, onSignal);
  Deno.exit(code);
}
