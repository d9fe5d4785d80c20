import { digestFromBlobPath, isSha256Digest, isSha256Hex, SHA256_HEX } from "../src/digest.ts";
import { digestFromName } from "../src/push/stream_blobs.ts";
import { assertEquals } from "./helpers/assert.ts";

const HEX = "0123456789abcdef".repeat(4);

Deno.test("digest: only sha256 with 64 lowercase hex digits passes the guards", () => {
  assertEquals(isSha256Digest(`sha256:${HEX}`), true);
  assertEquals(isSha256Digest(`sha256:${HEX.toUpperCase()}`), false);
  assertEquals(isSha256Digest(`sha256:${HEX}0`), false);
  assertEquals(isSha256Digest(`sha512:${HEX}${HEX}`), false);
  assertEquals(isSha256Digest(HEX), false);
  assertEquals(isSha256Hex(HEX), true);
  assertEquals(isSha256Hex(`sha256:${HEX}`), false);
  assertEquals(isSha256Hex(HEX.slice(1)), false);
  assertEquals(new RegExp(SHA256_HEX).test(`layers/${HEX}/layer.tar`), true);
});

Deno.test("digest: blob paths and skopeo layer names give their digest, other names none", () => {
  assertEquals(digestFromBlobPath(`blobs/sha256/${HEX}`), `sha256:${HEX}`);
  assertEquals(digestFromBlobPath(`./blobs/sha256/${HEX}`), undefined);
  assertEquals(digestFromBlobPath(`blobs/sha512/${HEX}`), undefined);
  assertEquals(digestFromName(`blobs/sha256/${HEX}`), `sha256:${HEX}`);
  assertEquals(digestFromName(`${HEX}.tar`), `sha256:${HEX}`);
  assertEquals(digestFromName(`${HEX}xtar`), undefined);
  assertEquals(digestFromName(`${HEX}/layer.tar`), undefined);
});
