/** What an upstream's `WWW-Authenticate` asks for: Basic, or a Bearer token from a token service. */
export type Challenge =
  | { scheme: "basic"; realm?: string }
  | { scheme: "bearer"; realm: string; service?: string; scope?: string; error?: string };

/**
 * The first Basic or Bearer challenge among `WWW-Authenticate` values (RFC 9110 §11.6.1: one header may hold
 * several challenges, and a parameter value is a token or a quoted string with `\` escapes). A Bearer
 * challenge without a realm is no use to a client and is skipped.
 */
export function parseChallenge(header: string | string[] | undefined): Challenge | undefined {
  const values = header === undefined ? [] : Array.isArray(header) ? header : [header];
  for (const value of values) {
    for (const { scheme, params } of splitChallenges(value)) {
      if (scheme === "basic") return { scheme, ...(params.realm !== undefined ? { realm: params.realm } : {}) };
      if (scheme === "bearer" && params.realm) {
        return {
          scheme,
          realm: params.realm,
          ...(params.service !== undefined ? { service: params.service } : {}),
          ...(params.scope !== undefined ? { scope: params.scope } : {}),
          ...(params.error !== undefined ? { error: params.error } : {}),
        };
      }
    }
  }
  return undefined;
}

interface RawChallenge {
  scheme: string;
  params: Record<string, string>;
}

type Lexeme = { kind: "token" | "quoted"; text: string } | { kind: "=" | "," };

const tokenPattern = /^[!#$%&'*+.^_`|~0-9A-Za-z/-]+/;

function lex(text: string): Lexeme[] {
  const out: Lexeme[] = [];
  let i = 0;
  while (i < text.length) {
    const c = text[i] as string;
    if (c === " " || c === "\t") i++;
    else if (c === "=" || c === ",") {
      out.push({ kind: c });
      i++;
    } else if (c === '"') {
      let value = "";
      i++;
      while (i < text.length && text[i] !== '"') {
        if (text[i] === "\\" && i + 1 < text.length) i++;
        value += text[i];
        i++;
      }
      i++;
      out.push({ kind: "quoted", text: value });
    } else {
      const token = tokenPattern.exec(text.slice(i))?.[0];
      if (!token) {
        i++;
        continue;
      }
      out.push({ kind: "token", text: token });
      i += token.length;
    }
  }
  return out;
}

/** `scheme name=value, name="value", next-scheme …`: a token not followed by `=` starts a challenge. */
function splitChallenges(text: string): RawChallenge[] {
  const lexemes = lex(text);
  const challenges: RawChallenge[] = [];
  let current: RawChallenge | undefined;
  for (let i = 0; i < lexemes.length; i++) {
    const lexeme = lexemes[i] as Lexeme;
    if (lexeme.kind !== "token") continue;
    const next = lexemes[i + 1];
    const value = lexemes[i + 2];
    if (next?.kind === "=" && current && value && (value.kind === "token" || value.kind === "quoted")) {
      current.params[lexeme.text.toLowerCase()] = value.text;
      i += 2;
    } else if (next?.kind !== "=") {
      current = { scheme: lexeme.text.toLowerCase(), params: {} };
      challenges.push(current);
    }
  }
  return challenges;
}
