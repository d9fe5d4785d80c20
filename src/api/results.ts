/**
 * What `push` and `pull` resolve with: plain data, decoupled from the core's own report types
 * so that the core can change shape behind them.
 *
 * @module
 */

/** A count of blobs and their bytes. */
export interface BlobCount {
  /** How many blobs. */
  count: number;
  /** Their bytes as the registry holds them (a layer compressed on the way: compressed). */
  bytes: number;
  /** Their bytes as the archive holds them. */
  archiveBytes: number;
}

/** One image (or joined index) pushed to one repository. */
export interface PushedImage {
  /** `registry/repository`, as the target named it (`docker.io/library/app`). */
  repository: string;
  /** Tags the manifest went under; empty when pushed by digest. */
  tags: string[];
  /** The root manifest pushed (in a dry run: the one a push would push). */
  manifest: { mediaType: string; digest: string; size: number };
  /**
   * False only in a dry run that would compress layers it has never compressed before: the
   * manifest's digest is then not yet known.
   */
  manifestFinal: boolean;
  /** `os/arch[/variant]` of each image, read from the archive. */
  platforms: string[];
  /** Blobs sent (in a dry run: that a push would send). */
  uploaded: BlobCount;
  /** Blobs the registry had already. */
  existing: BlobCount;
  /** Blobs mounted from another repository of the same registry. */
  mounted: BlobCount;
  /** Milliseconds this image took. */
  durationMs: number;
  /**
   * What refers to the image and went with it (in a dry run: would), in the order pushed;
   * empty with `referrers: false`.
   */
  referrers: PushedReferrer[];
  /**
   * Manifests whose referrers kept the image's layers as stored, not compressed: compressing
   * would have changed the digests they name. Absent when layers went as asked.
   */
  keptAsStoredFor?: string[];
}

/** A signature, SBOM or attestation `push` restored with its image. */
export interface PushedReferrer {
  /** Digest of the referrer's manifest (pushed byte for byte: the archive's). */
  digest: string;
  /** What it is, as its artifact type (or cosign tag) says. */
  kind: "signature" | "sbom" | "attestation" | "artifact";
  /** Its `artifactType`, else its config's media type. */
  artifactType: string;
  /** Digest of the manifest it refers to: the image's, a platform's, or another referrer's. */
  subject: string;
  /** The cosign-style tag it went under (`sha256-<hex>.sig`); absent for OCI 1.1. */
  tag?: string;
}

/** An image of the archives that `all` left out, and why. */
export interface SkippedImage {
  /** The archive holding it. */
  archive: string;
  /** Its manifest's digest. */
  digest: string;
  /** Why it was left out, in words. */
  reason: string;
}

/** What `push` did. */
export interface PushResult {
  /** True when nothing was sent (`dryRun`). */
  dryRun: boolean;
  /** Every image pushed, in the order of the targets. */
  images: PushedImage[];
  /** Images `all` left out (untagged and not named by `images`). */
  skipped: SkippedImage[];
}

/** One image written into the archive by `pull`. */
export interface PulledImage {
  /** Its name in the archive: `registry/repository:tag`, or `…@digest`. */
  name: string;
  /** Digest of the manifest (or index) stored. */
  digest: string;
  /** `os/arch[/variant]` of each platform stored. */
  platforms: string[];
  /** What refers to its manifests and came along (empty with `referrers: false`). */
  referrers: PulledReferrer[];
}

/** A signature, SBOM or attestation `pull` stored with its image. */
export interface PulledReferrer {
  /** Digest of the referrer's manifest. */
  digest: string;
  /** Its manifest's media type. */
  mediaType: string;
  /** Bytes of its manifest. */
  size: number;
  /** What it is, as its artifact type (or cosign tag) says. */
  kind: "signature" | "sbom" | "attestation" | "artifact";
  /** Its `artifactType`, else its config's media type. */
  artifactType: string;
  /** Digest of the manifest it refers to: the image's, a platform's, or another referrer's. */
  subject: string;
  /** The cosign-style tag it was found under (`sha256-<hex>.sig`); absent for OCI 1.1. */
  tag?: string;
}

/** What `pull` did. */
export interface PullResult {
  /** The images, in the order of the sources. */
  images: PulledImage[];
  /** Layer bytes this run downloaded. */
  downloaded: number;
  /** Layer bytes kept from a partial archive an earlier run left. */
  reused: number;
  /** Bytes of the archive written. */
  archiveSize: number;
}
