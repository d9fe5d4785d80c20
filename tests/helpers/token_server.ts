/**
 * A token server for the real registry's `token` auth mode, as Docker Hub, Harbor, GitLab and
 * Quay run one: `GET /token?service=…&scope=…` with Basic credentials (or `POST` with a
 * refresh token) answers a JWT signed with a key whose certificate the registry trusts through
 * `rootcertbundle`. Tokens can be made to live a very short time, to prove clients refresh.
 */
import { Buffer } from "node:buffer";
import { createPrivateKey, createSign, X509Certificate } from "node:crypto";
import { run } from "./command.ts";

export interface TokenServerOptions {
  /** Accounts allowed to push and pull: username → password. */
  users: Record<string, string>;
  /** Seconds each token lives. Default 60. */
  lifetimeSeconds?: number;
  /** Answer with `access_token` only (as some OAuth2-style servers do), not `token`. */
  accessTokenOnly?: boolean;
  /** Refresh tokens accepted by `POST` (docker's `identitytoken`), mapped to their user. */
  refreshTokens?: Record<string, string>;
  /** Grant anonymous pulls (never pushes). Default false. */
  anonymousPull?: boolean;
}

export interface TokenRequestRecord {
  method: string;
  scopes: string[];
  account: string | undefined;
  status: number;
  /** Whether the request carried an Authorization header. */
  authorized: boolean;
}

export interface TokenServer extends AsyncDisposable {
  /** `http://127.0.0.1:PORT/token`. */
  realm: string;
  service: string;
  issuer: string;
  /** PEM certificate for the registry's `rootcertbundle`. */
  certPath: string;
  requests: TokenRequestRecord[];
  /** Every token issued, to check none leaks into output. */
  issued: string[];
  close(): Promise<void>;
}

const SERVICE = "dip-test-registry";
const ISSUER = "dip-test-issuer";

/** Starts a token server on 127.0.0.1 with a fresh RSA key and self-signed certificate. */
export async function startTokenServer(options: TokenServerOptions): Promise<TokenServer> {
  const dir = await Deno.makeTempDir({ prefix: "dip-token-" });
  const keyPath = `${dir}/key.pem`;
  const certPath = `${dir}/cert.pem`;
  await run("openssl", [
    "req",
    "-x509",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-keyout",
    keyPath,
    "-out",
    certPath,
    "-days",
    "1",
    "-subj",
    "/CN=dip-token-signer",
  ]);
  const key = createPrivateKey(await Deno.readTextFile(keyPath));
  const cert = new X509Certificate(await Deno.readTextFile(certPath));
  const x5c = [Buffer.from(cert.raw).toString("base64")];
  const lifetime = options.lifetimeSeconds ?? 60;
  const requests: TokenRequestRecord[] = [];
  const issued: string[] = [];

  const sign = (account: string | undefined, scopes: string[]) => {
    const now = Math.floor(Date.now() / 1000);
    const access = scopes.flatMap((scope) => {
      const [type, name, actions] = scope.split(":");
      if (type !== "repository" || !name || !actions) return [];
      const allowed = actions.split(",").filter((a) =>
        account !== undefined ? a === "pull" || a === "push" : options.anonymousPull && a === "pull"
      );
      return [{ type, name, actions: allowed }];
    });
    const header = { alg: "RS256", typ: "JWT", x5c };
    const claims = {
      iss: ISSUER,
      sub: account ?? "",
      aud: SERVICE,
      exp: now + lifetime,
      nbf: now - 1,
      iat: now,
      jti: crypto.randomUUID(),
      access,
    };
    const encode = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");
    const input = `${encode(header)}.${encode(claims)}`;
    const signature = createSign("RSA-SHA256").update(input).sign(key).toString("base64url");
    const token = `${input}.${signature}`;
    issued.push(token);
    return token;
  };

  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    const url = new URL(req.url);
    const authorization = req.headers.get("authorization");
    let account: string | undefined;
    let scopes = url.searchParams.getAll("scope").flatMap((s) => s.split(" ")).filter(Boolean);
    let denied = false;
    if (req.method === "POST") {
      const form = new URLSearchParams(await req.text());
      scopes = (form.get("scope") ?? "").split(" ").filter(Boolean);
      const user = options.refreshTokens?.[form.get("refresh_token") ?? ""];
      if (form.get("grant_type") !== "refresh_token" || user === undefined) denied = true;
      else account = user;
    } else if (authorization?.startsWith("Basic ")) {
      const [user, ...rest] = atob(authorization.slice(6)).split(":");
      if (user !== undefined && options.users[user] === rest.join(":")) account = user;
      else denied = true;
    }
    const status = denied ? 401 : 200;
    requests.push({
      method: req.method,
      scopes,
      account,
      status,
      authorized: authorization !== null,
    });
    if (denied) return Response.json({ errors: [{ code: "UNAUTHORIZED" }] }, { status });
    const token = sign(account, scopes);
    const body: Record<string, unknown> = {
      access_token: token,
      expires_in: lifetime,
      issued_at: new Date().toISOString(),
    };
    if (!options.accessTokenOnly) body["token"] = token;
    return Response.json(body);
  });

  const close = async () => {
    await server.shutdown();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  };
  return {
    realm: `http://127.0.0.1:${server.addr.port}/token`,
    service: SERVICE,
    issuer: ISSUER,
    certPath,
    requests,
    issued,
    close,
    [Symbol.asyncDispose]: close,
  };
}
