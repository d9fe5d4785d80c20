/**
 * Committing an image's manifests once its blobs are in place, in the order the registry
 * needs: children before parents (an index's platforms by digest, then the index), and each
 * manifest's referrers after it, byte for byte: by digest (an OCI 1.1 referrer, then listed for
 * its subject, see `Writer.listReferrer`) or under its cosign tag (`sha256-<hex>.sig`), then
 * what refers to them in turn (a signature of an SBOM).
 */
import type { ManifestNode } from "../image/graph.ts";
import { describeReferrer } from "../image/referrer.ts";
import type { ProgressSink } from "../progress/events.ts";
import type { PushedReferrer } from "./graph_referrers.ts";
import type { Writer } from "./writer.ts";

/** A reference to commit a manifest under, and how progress names it. */
export interface CommitReference {
  reference: string;
  shown?: string;
}

/** Where a graph's commits report to, and collect the referrers restored. */
export interface CommitContext {
  writer: Writer;
  sink: ProgressSink;
  /** Referrers restored so far (appended to). */
  referrers: PushedReferrer[];
}

/** Commits `node` under `references`, after its children (by digest), before its referrers. */
export async function commitGraph(
  node: ManifestNode,
  references: readonly CommitReference[],
  context: CommitContext,
): Promise<void> {
  await commitChildren(node, context);
  for (const { reference, shown } of references) {
    await context.writer.commitManifest(node, reference, shown);
  }
  await commitReferrers(node, context);
}

/** An index's manifests, each by digest with its own graph. */
async function commitChildren(node: ManifestNode, context: CommitContext): Promise<void> {
  for (const child of node.children) {
    await commitGraph(child, [{ reference: child.digest }], context);
  }
}

/**
 * Commits the referrers of `subject` (already committed), each after its own children and
 * before its own referrers, and appends what was restored to the context's `referrers`.
 */
async function commitReferrers(subject: ManifestNode, context: CommitContext): Promise<void> {
  const { writer, sink } = context;
  for (const referrer of subject.referrers ?? []) {
    const node = referrer.node;
    await commitChildren(node, context);
    const done: PushedReferrer = {
      digest: node.digest,
      kind: referrer.kind,
      artifactType: referrer.artifactType,
      subject: subject.digest,
    };
    if (referrer.attached.by === "tag") {
      await writer.commitManifest(node, referrer.attached.tag);
      done.tag = referrer.attached.tag;
    } else {
      const answer = await writer.commitManifest(node, node.digest);
      const descriptor = describeReferrer(node.bytes, node.digest, node.mediaType);
      done.listed = await writer.listReferrer(subject.digest, descriptor, answer);
    }
    context.referrers.push(done);
    const client = writer.client;
    sink({
      type: "referrer-done",
      digest: done.digest,
      subject: done.subject,
      kind: done.kind,
      artifactType: done.artifactType,
      target: `${client.registryName}/${client.repository}`,
      ...(done.tag !== undefined ? { tag: done.tag } : {}),
      ...(writer.dryRun ? { dryRun: true } : {}),
    });
    await commitReferrers(node, context);
  }
}
