/** The one `Accept` every manifest request sends. */
import { MANIFEST_ACCEPT, MEDIA_TYPES } from "../../src/image/media_types.ts";
import { assertEquals } from "../helpers/assert.ts";

Deno.test("MANIFEST_ACCEPT: every manifest and index type, once, indexes first", () => {
  assertEquals(MANIFEST_ACCEPT.split(", "), [
    MEDIA_TYPES.ociIndex,
    MEDIA_TYPES.dockerManifestList,
    MEDIA_TYPES.ociManifest,
    MEDIA_TYPES.dockerManifest,
  ]);
});
