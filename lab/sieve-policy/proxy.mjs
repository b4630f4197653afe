// bma test lab: the new platform's ManageSieve front door.
//
// The new platform accepts Sieve scripts that keep mail inside the
// organisation (fileinto, vacation, redirect to an internal address) and
// refuses at upload those that would send it outside: a `redirect` (with or
// without `:copy`) or a `notify` with a `mailto:` URI whose address is a
// literal outside the internal domains, or whose target is not a literal
// (a variable, an encoded character, an external list: it could go outside).
// Pigeonhole (0.5.19) compiles such scripts whatever its settings, so this
// proxy sits in front of Dovecot's ManageSieve and passes every byte through,
// except a PUTSCRIPT or CHECKSCRIPT whose script it refuses: that command is
// replaced upstream by `NOOP "<tag>"` with a tag of its own, and Dovecot's
// tagged OK for it is rewritten into `NO "<French reason>"`, so the answers
// stay in the order of the commands (RFC 5804, NOOP with a tag: 2.16).
//
// Domains: an address is internal when its domain (after the last `@`, in
// `<…>` if there are brackets, any case, a final dot ignored) is one of the
// internal domains exactly: a subdomain is not internal unless it is listed
// (the forwarding audit of bma-sieve judges the same way).
//
// A script this reader cannot read (an unterminated string or comment) is
// passed through: it is not valid Sieve and Dovecot refuses it with its own
// error. A redirect that reaches delivery anyway (a script installed by an
// administrator) is refused by the lab Postfix's redirect listener.
//
// Environment: BMA_LAB_SIEVE_LISTEN (port, default 24190),
//              BMA_LAB_SIEVE_UPSTREAM (Dovecot's port, default 24191),
//              BMA_LAB_SIEVE_INTERNAL_DOMAINS (comma separated, default adm.cfwb.be).
import { createConnection, createServer } from 'node:net';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';

const PLATFORM = 'la nouvelle plateforme de messagerie';

/// The internal domains of a comma-separated list, normalised.
export function parseDomains(text) {
  return (text || '')
    .split(',')
    .map(normaliseDomain)
    .filter((d) => d.length > 0);
}

function normaliseDomain(d) {
  return d.trim().replace(/\.+$/, '').toLowerCase();
}

// ---------------------------------------------------------------- Sieve reader

/// The tokens of a Sieve script (RFC 5228, 8.1): identifiers, tags, numbers,
/// strings (quoted or `text:`, their value decoded), punctuation. Throws a
/// SyntaxError on what is not Sieve at the lexical level.
export function tokenize(script) {
  const tokens = [];
  let i = 0;
  const n = script.length;
  while (i < n) {
    const c = script[i];
    if (c === ' ' || c === '\t' || c === '\r' || c === '\n') {
      i += 1;
    } else if (c === '#') {
      const eol = script.indexOf('\n', i);
      i = eol < 0 ? n : eol + 1;
    } else if (script.startsWith('/*', i)) {
      const end = script.indexOf('*/', i + 2);
      if (end < 0) throw new SyntaxError('unterminated comment');
      i = end + 2;
    } else if (c === '"') {
      let value = '';
      i += 1;
      for (;;) {
        if (i >= n) throw new SyntaxError('unterminated string');
        const d = script[i];
        if (d === '"') break;
        if (d === '\\') {
          if (i + 1 >= n) throw new SyntaxError('unterminated string');
          value += script[i + 1];
          i += 2;
        } else {
          value += d;
          i += 1;
        }
      }
      i += 1;
      tokens.push({ type: 'string', value });
    } else if (/^text:/i.test(script.slice(i, i + 5))) {
      // text: [spaces] [# comment] CRLF, then lines up to a line holding a
      // lone dot; a line starting with a dot lost its first dot (stuffing).
      i += 5;
      while (i < n && (script[i] === ' ' || script[i] === '\t')) i += 1;
      if (script[i] === '#') {
        const eol = script.indexOf('\n', i);
        i = eol < 0 ? n : eol;
      }
      if (script[i] === '\r') i += 1;
      if (script[i] !== '\n') throw new SyntaxError('text: must end its line');
      i += 1;
      const lines = [];
      for (;;) {
        if (i >= n) throw new SyntaxError('unterminated text:');
        const eol = script.indexOf('\n', i);
        const end = eol < 0 ? n : eol + 1;
        const line = script.slice(i, end);
        i = end;
        const bare = line.replace(/\r?\n$/, '');
        if (bare === '.') break;
        lines.push(line.startsWith('.') ? line.slice(1) : line);
      }
      tokens.push({ type: 'string', value: lines.join('') });
    } else if (c === ':') {
      const m = /^:([A-Za-z_][A-Za-z0-9_]*)/.exec(script.slice(i, i + 200));
      if (!m) throw new SyntaxError('bad tag');
      tokens.push({ type: 'tag', value: m[1].toLowerCase() });
      i += m[0].length;
    } else if (/[A-Za-z_]/.test(c)) {
      const m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(script.slice(i, i + 200));
      tokens.push({ type: 'id', value: m[0].toLowerCase() });
      i += m[0].length;
    } else if (/[0-9]/.test(c)) {
      const m = /^[0-9]+[KMGkmg]?/.exec(script.slice(i, i + 40));
      tokens.push({ type: 'number', value: m[0] });
      i += m[0].length;
    } else if ('[](){},;'.includes(c)) {
      tokens.push({ type: 'punct', value: c });
      i += 1;
    } else {
      throw new SyntaxError(`unexpected character ${JSON.stringify(c)}`);
    }
  }
  return tokens;
}

/// The commands named `names` wherever they are (in blocks too), each with
/// the tokens of its arguments (up to its `;`).
function commandsNamed(tokens, names) {
  const found = [];
  let start = true;
  for (let i = 0; i < tokens.length; i += 1) {
    const t = tokens[i];
    if (t.type === 'punct' && (t.value === ';' || t.value === '{' || t.value === '}')) {
      start = true;
      continue;
    }
    if (start && t.type === 'id' && names.includes(t.value)) {
      let j = i + 1;
      while (j < tokens.length && !(tokens[j].type === 'punct' && ';{}'.includes(tokens[j].value))) j += 1;
      found.push({ name: t.value, args: tokens.slice(i + 1, j) });
      i = j - 1;
    }
    start = false;
  }
  return found;
}

/// Tags and their values, and the positional arguments (strings, lists of
/// strings) of a command, given which tags take a value.
function splitArguments(args, tagsWithValue) {
  const tags = new Map();
  const positional = [];
  for (let i = 0; i < args.length; i += 1) {
    const a = args[i];
    if (a.type === 'tag') {
      if (tagsWithValue.includes(a.value)) {
        const [value, next] = argumentAt(args, i + 1);
        tags.set(a.value, value);
        i = next - 1;
      } else {
        tags.set(a.value, null);
      }
    } else {
      const [value, next] = argumentAt(args, i);
      if (value !== null) positional.push(value);
      i = next - 1;
    }
  }
  return { tags, positional };
}

/// The argument at `i`: a string, a list of strings (an array), a number
/// (its text) or null; and the index after it.
function argumentAt(args, i) {
  const a = args[i];
  if (!a) return [null, i + 1];
  if (a.type === 'string' || a.type === 'number') return [a.value, i + 1];
  if (a.type === 'punct' && a.value === '[') {
    const list = [];
    let j = i + 1;
    while (j < args.length && !(args[j].type === 'punct' && args[j].value === ']')) {
      if (args[j].type === 'string') list.push(args[j].value);
      j += 1;
    }
    return [list, j + 1];
  }
  return [null, i + 1];
}

const strings = (values) => values.flatMap((v) => (Array.isArray(v) ? v : v === null ? [] : [v]));

/// The recipients of a `mailto:` URI (RFC 6068): its path's addresses and
/// its `to`, `cc` and `bcc` fields, percent-decoded.
export function mailtoRecipients(uri) {
  const rest = uri.slice('mailto:'.length);
  const q = rest.indexOf('?');
  const path = q < 0 ? rest : rest.slice(0, q);
  const query = q < 0 ? '' : rest.slice(q + 1);
  const out = path.split(',').map(decode);
  for (const field of query.split('&')) {
    const eq = field.indexOf('=');
    if (eq < 0) continue;
    if (['to', 'cc', 'bcc'].includes(decode(field.slice(0, eq)).toLowerCase())) {
      out.push(...decode(field.slice(eq + 1)).split(','));
    }
  }
  return out.map((a) => a.trim()).filter((a) => a.length > 0);
}

function decode(text) {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/// The domain of an address (after the last `@`, in `<…>` if bracketed).
function domainOf(address) {
  const m = /<([^>]*)>/.exec(address);
  const bare = (m ? m[1] : address).trim();
  const at = bare.lastIndexOf('@');
  return at < 0 ? '' : normaliseDomain(bare.slice(at + 1));
}

/// What the policy says of one target: 'internal', 'external' or
/// 'dynamic' (computed when the script runs: `${…}`).
export function judgeAddress(address, domains) {
  if (address.includes('${')) return 'dynamic';
  const domain = domainOf(address);
  return domain !== '' && domains.includes(domain) ? 'internal' : 'external';
}

const REDIRECT_TAGS_WITH_VALUE = ['notify', 'ret', 'bytimerelative', 'bytimeabsolute', 'bymode'];
const NOTIFY_TAGS_WITH_VALUE = ['from', 'importance', 'options', 'message', 'method', 'id'];

/// Why the policy refuses `script` (a French sentence), or null when it
/// accepts it. A script that is not Sieve at the lexical level is accepted
/// here (Dovecot refuses it).
export function refusal(script, domains) {
  let tokens;
  try {
    tokens = tokenize(script);
  } catch {
    return null;
  }
  const allowed = `Seules les adresses ${domains.map((d) => `@${d}`).join(' ou ')} sont acceptées.`;
  for (const command of commandsNamed(tokens, ['redirect', 'notify'])) {
    const what = command.name === 'redirect' ? 'Les redirections automatiques' : 'Les notifications par e-mail';
    let targets;
    if (command.name === 'redirect') {
      const { tags, positional } = splitArguments(command.args, REDIRECT_TAGS_WITH_VALUE);
      if (tags.has('list')) {
        return `${what} vers une liste d'adresses (${shown(strings(positional).join(', '))}) ne sont pas autorisées sur ${PLATFORM}. ${allowed}`;
      }
      targets = strings(positional);
    } else {
      const { tags, positional } = splitArguments(command.args, NOTIFY_TAGS_WITH_VALUE);
      const method = tags.has('method') ? tags.get('method') : strings(positional).at(-1);
      if (typeof method !== 'string') continue;
      if (method.includes('${')) {
        return `${what} vers une adresse calculée par le script (${shown(method)}) ne sont pas autorisées sur ${PLATFORM}. ${allowed}`;
      }
      if (/^mailto:/i.test(method)) targets = mailtoRecipients(method);
      else if (method.toLowerCase() === 'mailto') targets = strings([tags.get('options') ?? null]);
      else continue;
    }
    for (const target of targets) {
      const verdict = judgeAddress(target, domains);
      if (verdict === 'dynamic') {
        return `${what} vers une adresse calculée par le script (${shown(target)}) ne sont pas autorisées sur ${PLATFORM}. ${allowed}`;
      }
      if (verdict === 'external') {
        return `${what} vers une adresse extérieure (${shown(target)}) ne sont pas autorisées sur ${PLATFORM}. ${allowed}`;
      }
    }
  }
  return null;
}

/// A value quoted in a reason: no control characters, at most 120 characters.
function shown(text) {
  const clean = text.replace(/[\u0000-\u001f\u007f]/g, ' ').trim();
  return clean.length > 120 ? `${clean.slice(0, 119)}…` : clean;
}

// ---------------------------------------------------------------- ManageSieve

/// A ManageSieve string (RFC 5804, 4): quoted when it can be, else a literal.
export function sieveString(text) {
  const bytes = Buffer.from(text, 'utf8');
  if (/[\r\n\u0000]/.test(text) || bytes.length > 1024) {
    return Buffer.concat([Buffer.from(`{${bytes.length}}\r\n`), bytes]);
  }
  return Buffer.from(`"${text.replace(/[\\"]/g, (c) => `\\${c}`)}"`, 'utf8');
}

/// The strings of one whole command (its bytes, literals included): its
/// name and its string arguments, or null when it does not read as such.
export function parseCommand(raw) {
  const m = /^([A-Za-z]+)/.exec(raw.subarray(0, 32).toString('latin1'));
  if (!m) return null;
  const args = [];
  let i = m[0].length;
  for (;;) {
    while (i < raw.length && raw[i] === 0x20) i += 1;
    if (i >= raw.length || raw[i] === 0x0d || raw[i] === 0x0a) return { name: m[1].toUpperCase(), args };
    if (raw[i] === 0x22) {
      const bytes = [];
      i += 1;
      while (i < raw.length && raw[i] !== 0x22) {
        if (raw[i] === 0x5c) i += 1;
        bytes.push(raw[i]);
        i += 1;
      }
      if (i >= raw.length) return null;
      i += 1;
      args.push(Buffer.from(bytes));
    } else if (raw[i] === 0x7b) {
      const close = raw.indexOf('}', i);
      if (close < 0) return null;
      const size = Number(raw.subarray(i + 1, close).toString('latin1').replace('+', ''));
      let start = close + 1;
      if (raw[start] === 0x0d) start += 1;
      if (raw[start] !== 0x0a || !Number.isSafeInteger(size)) return null;
      start += 1;
      args.push(raw.subarray(start, start + size));
      i = start + size;
    } else {
      // an atom (a number, a word): not a string
      while (i < raw.length && ![0x20, 0x0d, 0x0a].includes(raw[i])) i += 1;
      args.push(null);
    }
  }
}

/// The script of a PUTSCRIPT or CHECKSCRIPT command, or null.
function scriptOf(command) {
  if (!command) return null;
  const index = { PUTSCRIPT: 1, CHECKSCRIPT: 0 }[command.name];
  if (index === undefined) return null;
  return command.args[index] ?? null;
}

/// The size of the literal a line announces at its end (`{n}` or `{n+}`).
function literalAtEnd(line) {
  const m = /\{(\d+)\+?\}\r?\n$/.exec(line.toString('latin1'));
  return m ? Number(m[1]) : null;
}

function handle(client, options) {
  const upstream = createConnection({ host: '127.0.0.1', port: options.upstreamPort });
  upstream.on('error', () => client.destroy());
  client.on('error', () => upstream.destroy());
  upstream.on('close', () => client.destroy());
  client.on('end', () => upstream.end());

  // Tags of the NOOPs standing for refused commands, with their reason.
  const nonce = randomBytes(8).toString('hex');
  let counter = 0;
  const refused = new Map();

  // Client to Dovecot: whole commands (lines and their literals).
  let input = Buffer.alloc(0);
  let command = [];
  let literal = null; // bytes of a literal still to come
  client.on('data', (chunk) => {
    input = Buffer.concat([input, chunk]);
    for (;;) {
      if (literal !== null) {
        if (input.length < literal) return;
        command.push(input.subarray(0, literal));
        input = input.subarray(literal);
        literal = null;
        continue;
      }
      const eol = input.indexOf('\n');
      if (eol < 0) return;
      const line = input.subarray(0, eol + 1);
      input = input.subarray(eol + 1);
      command.push(line);
      literal = literalAtEnd(line);
      if (literal !== null) continue;
      const raw = Buffer.concat(command);
      command = [];
      const script = scriptOf(parseCommand(raw));
      const reason = script === null ? null : refusal(script.toString('utf8'), options.domains);
      if (reason === null) {
        upstream.write(raw);
      } else {
        counter += 1;
        const tag = `bma-refused-${nonce}-${counter}`;
        refused.set(tag, reason);
        upstream.write(`NOOP "${tag}"\r\n`);
      }
    }
  });

  // Dovecot to the client: every byte, but the tagged OK of our NOOPs.
  let output = Buffer.alloc(0);
  let passing = 0; // bytes of a literal to pass as they are
  upstream.on('data', (chunk) => {
    output = Buffer.concat([output, chunk]);
    for (;;) {
      if (passing > 0) {
        const n = Math.min(passing, output.length);
        if (n === 0) return;
        client.write(output.subarray(0, n));
        output = output.subarray(n);
        passing -= n;
        continue;
      }
      const eol = output.indexOf('\n');
      if (eol < 0) return;
      const line = output.subarray(0, eol + 1);
      output = output.subarray(eol + 1);
      const m = /^OK \(TAG "(bma-refused-[0-9a-f]+-\d+)"\)/i.exec(line.toString('latin1'));
      if (m && refused.has(m[1])) {
        const reason = refused.get(m[1]);
        refused.delete(m[1]);
        client.write(Buffer.concat([Buffer.from('NO '), sieveString(reason), Buffer.from('\r\n')]));
        continue;
      }
      client.write(line);
      passing = literalAtEnd(line) ?? 0;
    }
  });
}

/// Starts the proxy.
export function serve({ listen, upstreamPort, domains }) {
  const server = createServer((client) => handle(client, { upstreamPort, domains }));
  server.listen(listen, '127.0.0.1', () => {
    console.log(
      `bma lab ManageSieve policy proxy on 127.0.0.1:${listen} -> ${upstreamPort}; internal domains: ${domains.join(', ')}`,
    );
  });
  return server;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const domains = parseDomains(process.env.BMA_LAB_SIEVE_INTERNAL_DOMAINS || 'adm.cfwb.be');
  serve({
    listen: Number(process.env.BMA_LAB_SIEVE_LISTEN || 24190),
    upstreamPort: Number(process.env.BMA_LAB_SIEVE_UPSTREAM || 24191),
    domains,
  });
  for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => process.exit(0));
}
