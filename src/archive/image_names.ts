/** Comparing the names archives give images, as docker normalizes them. */
import { parseReference } from "../image/reference.ts";

/**
 * One key for names of the same image: `app:1` and `docker.io/library/app:1` get the same one.
 * A name that does not parse is its own key.
 */
export function canonicalName(name: string): string {
  try {
    const ref = parseReference(name);
    return `${ref.registry}/${ref.repository}:${ref.tag ?? ""}@${ref.digest ?? ""}`;
  } catch {
    return name;
  }
}
