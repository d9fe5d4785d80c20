/**
 * The shape of the files that say what an archive holds (`index.json`, `manifest.json`),
 * checked the moment one is read. A stream can be read only once and its large entries go to
 * the registry as they pass: a malformed archive should stop at its table of contents, not
 * after the layers behind it were sent. The loaders check the same shapes again, and what the
 * files name, once the whole archive has been seen.
 */
import { ArchiveError } from "../errors.ts";
import { parseDirManifest } from "./dir_layout.ts";
import { parseSaveManifest } from "./docker_save.ts";
import { JsonShapeError, parseJson } from "../image/json_guards.ts";
import { parseIndex } from "./oci_layout.ts";

/** Names (normalized, at the archive's root) of the files {@linkcode checkLayoutFile} checks. */
export const LAYOUT_FILE_NAMES: readonly string[] = ["index.json", "manifest.json"];

/**
 * Throws when `bytes`, the content of `name` (one of {@linkcode LAYOUT_FILE_NAMES}), is not
 * what any format we read stores there; does nothing for other names.
 *
 * @throws {ArchiveError} naming the archive (`label`), the file and what is wrong.
 */
export function checkLayoutFile(label: string, name: string, bytes: Uint8Array): void {
  if (!LAYOUT_FILE_NAMES.includes(name)) return;
  try {
    const value = parseJson(bytes);
    if (name === "index.json") parseIndex(value);
    else if (Array.isArray(value)) parseSaveManifest(value);
    else if (typeof value === "object" && value !== null) parseDirManifest(value);
    else {
      throw new JsonShapeError(
        "the top level must be a list (docker save) or a manifest (a dir: layout)",
      );
    }
  } catch (error) {
    if (error instanceof JsonShapeError) {
      throw new ArchiveError(label, `${name}: ${error.message}`, { cause: error });
    }
    throw error;
  }
}
