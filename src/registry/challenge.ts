/**
 * `WWW-Authenticate` parsing (RFC 7235): several challenges in one header, quoted values with
 * escapes, and commas inside quotes (`scope="repository:a:pull,push"`).
 */

export interface Challenge {
  /** Lowercased scheme: `basic`, `bearer`, … */
  scheme: string;
  /** Lowercased parameter names to values. */
  params: Record<string, string>;
}

/** Parses every challenge in a `WWW-Authenticate` header value. */
export function parseChallenges(header: string): Challenge[] {
  const challenges: Challenge[] = [];
  let i = 0;
  const n = header.length;
  const skipSpace = () => {
    while (i < n && (header[i] === " " || header[i] === "\t")) i++;
  };
  const token = () => {
    const start = i;
    while (i < n && /[!#$%&'*+.^_`|~0-9A-Za-z-]/.test(header[i]!)) i++;
    return header.slice(start, i);
  };
  while (i < n) {
    skipSpace();
    while (i < n && header[i] === ",") {
      i++;
      skipSpace();
    }
    const scheme = token();
    if (scheme === "") {
      i++; // Garbage: skip a character rather than loop forever.
      continue;
    }
    const challenge: Challenge = { scheme: scheme.toLowerCase(), params: {} };
    challenges.push(challenge);
    // Parameters: name=value pairs separated by commas, until the next scheme.
    for (;;) {
      skipSpace();
      const save = i;
      const name = token();
      skipSpace();
      if (name === "" || header[i] !== "=") {
        i = save; // Not a parameter: the start of the next challenge (or token68).
        if (name !== "" && header[i] !== "=") break;
        if (name === "") {
          if (header[i] === ",") {
            i++;
            continue;
          }
          break;
        }
      }
      i++; // "="
      skipSpace();
      let value = "";
      if (header[i] === '"') {
        i++;
        while (i < n && header[i] !== '"') {
          if (header[i] === "\\" && i + 1 < n) i++;
          value += header[i];
          i++;
        }
        i++; // closing quote
      } else {
        const start = i;
        while (i < n && header[i] !== "," && header[i] !== " ") i++;
        value = header.slice(start, i);
      }
      challenge.params[name.toLowerCase()] = value;
      skipSpace();
      if (header[i] === ",") i++;
      else break;
    }
  }
  return challenges;
}
