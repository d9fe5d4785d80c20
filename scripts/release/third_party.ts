/**
 * The licenses of the npm packages the bundle inlines (commander, the proxy agents, …), which
 * their MIT terms ask every copy to carry. The bundler marks each inlined module with a comment
 * naming its file, `// <path>/registry.npmjs.org/<name>/<version>/<file>`, a path into Deno's
 * npm cache relative to where the bundle was built: the packages are found from those, and their
 * license files read from that cache.
 */

/** One inlined npm package. */
export interface InlinedPackage {
  name: string;
  version: string;
  /** Its folder in Deno's npm cache. */
  dir: string;
}

const MARK = /^\/\/ (.*?\/registry\.npmjs\.org\/((?:@[^/]+\/)?[^/@]+)\/([^/]+))\//gm;

/**
 * The npm packages `bundle` inlines, each once, sorted by name; `base` resolves their paths.
 *
 * @throws {Error} when a module comes from a local `node_modules` (a `nodeModulesDir` setting):
 * its package could not be told from its path here, and its license would be missed.
 */
export function inlinedPackages(bundle: string, base: string): InlinedPackage[] {
  const local = /^\/\/ (\S*node_modules\/\S*)$/m.exec(bundle);
  if (local !== null) {
    throw new Error(
      `The bundle inlines ${local[1]} from a local node_modules; bundle from Deno's npm ` +
        `cache so that its package's license can be found`,
    );
  }
  const found = new Map<string, InlinedPackage>();
  for (const [, dir, name, version] of bundle.matchAll(MARK)) {
    const absolute = dir!.startsWith("/") ? dir! : `${base}/${dir}`;
    found.set(`${name}@${version}`, { name: name!, version: version!, dir: absolute });
  }
  return [...found.values()].sort((a, b) => a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
}

/** License files as packages name them (LICENSE, LICENSE.md, license.txt, LICENCE, COPYING…). */
const LICENSE_FILE = /^(licen[cs]e|copying)(\.(md|txt|markdown))?$/i;

/**
 * The text of `THIRD-PARTY-LICENSES`: for each package, its name, version and declared license,
 * then its license files. A package that ships none is listed with its declared license and
 * says so.
 *
 * @throws {Error} when a package's folder is not in the npm cache (bundled elsewhere).
 */
export async function thirdPartyNotices(packages: readonly InlinedPackage[]): Promise<string> {
  const sections: string[] = [];
  for (const pkg of packages) {
    let manifest: { license?: unknown; repository?: unknown };
    try {
      manifest = JSON.parse(await Deno.readTextFile(`${pkg.dir}/package.json`));
    } catch (error) {
      throw new Error(
        `Cannot read ${pkg.name}@${pkg.version}'s package.json in ${pkg.dir} (the bundle ` +
          `inlines it): bundle on the machine that builds the release`,
        { cause: error },
      );
    }
    const declared = typeof manifest.license === "string" ? manifest.license : "not declared";
    const files = [...Deno.readDirSync(pkg.dir)]
      .filter((entry) => entry.isFile && LICENSE_FILE.test(entry.name))
      .map((entry) => entry.name)
      .sort();
    const texts = await Promise.all(files.map((f) => Deno.readTextFile(`${pkg.dir}/${f}`)));
    sections.push(
      `${pkg.name}@${pkg.version} (license: ${declared})\n\n` +
        (texts.length > 0
          ? texts.map((text) => text.trim()).join("\n\n")
          : "The package ships no license text; its package.json declares the license above."),
    );
  }
  return "This kit's program (lib/docker-image-pusher.js) includes these npm packages.\n\n" +
    sections.join(`\n\n${"-".repeat(78)}\n\n`) + "\n";
}
