/** One entry of a kit's archive, as both archive writers (tar.gz, zip) take it. */
export type KitEntry =
  | { kind: "dir"; name: string; mode: number }
  | { kind: "file"; name: string; mode: number; data: Uint8Array };
