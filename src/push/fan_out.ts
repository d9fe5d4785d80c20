/**
 * Which registries of a run want each layer that is compressed on the way, and what each got
 * when one compression went to all of them (see `LayerCompressor.uploadToAll`). The push that
 * reaches a layer first sends it everywhere; the others find it sent.
 */
import type { RegistryClient } from "../registry/client.ts";
import type { Descriptor } from "../image/descriptor.ts";

export class CompressedFanOut {
  /** Layer digest → one client per registry that wants it, in the order they were named. */
  #wanted = new Map<string, RegistryClient[]>();
  #sent = new Map<RegistryClient, Map<string, Descriptor>>();

  /** `client`'s push will want the layer `digest` compressed. */
  want(digest: string, client: RegistryClient): void {
    const clients = this.#wanted.get(digest) ?? [];
    if (!clients.some((c) => sameRegistry(c, client))) clients.push(client);
    this.#wanted.set(digest, clients);
  }

  /** The clients of the other registries that want `digest`. */
  others(digest: string, client: RegistryClient): RegistryClient[] {
    return (this.#wanted.get(digest) ?? []).filter((c) => !sameRegistry(c, client));
  }

  /** `client`'s registry got the layer `digest`, as `descriptor`. */
  record(client: RegistryClient, digest: string, descriptor: Descriptor): void {
    const sent = this.#sent.get(client) ?? new Map<string, Descriptor>();
    sent.set(digest, descriptor);
    this.#sent.set(client, sent);
  }

  /** What the layer `digest` became in `client`'s repository, if a fan-out sent it there. */
  sent(client: RegistryClient, digest: string): Descriptor | undefined {
    return this.#sent.get(client)?.get(digest);
  }
}

function sameRegistry(a: RegistryClient, b: RegistryClient): boolean {
  return a.baseUrl.href === b.baseUrl.href;
}
