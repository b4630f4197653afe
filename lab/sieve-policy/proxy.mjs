// bma test lab: the new platform's ManageSieve front door.
//
// Pigeonhole (0.5.19) accepts a script with `redirect "literal@address"` at
// upload even with sieve_max_redirects = 0 (that setting only fails the action
// at delivery). The new platform must refuse forwarding scripts at upload, so
// this proxy sits in front of Dovecot's ManageSieve: it passes every byte
// through, except that the script of a PUTSCRIPT or CHECKSCRIPT containing a
// `redirect` command is replaced by one that Dovecot itself refuses to compile,
// so the client gets Dovecot's own NO, in order, with the policy named in it.
//
// Environment: BMA_LAB_SIEVE_LISTEN (port, default 24190),
//              BMA_LAB_SIEVE_UPSTREAM (Dovecot's port, default 24191).
import { createConnection, createServer } from 'node:net';

const listen = Number(process.env.BMA_LAB_SIEVE_LISTEN || 24190);
const upstreamPort = Number(process.env.BMA_LAB_SIEVE_UPSTREAM || 24191);
const REFUSED = Buffer.from(
  'require "bma-policy-automatic-forwarding-redirect-is-forbidden-on-this-platform";\r\n',
);

// Whether a Sieve script uses the redirect command (comments and strings ignored).
export function usesRedirect(script) {
  const code = script
    .replace(/\/\*[\s\S]*?\*\//g, ' ')
    .replace(/#[^\n]*/g, ' ')
    .replace(/text:[\s\S]*?\r?\n\.\r?\n/g, ' ')
    .replace(/"(?:[^"\\]|\\.)*"/g, '""');
  return /(^|[\s;{}])redirect(?=[\s:"\[;])/i.test(code);
}

function handle(client) {
  const upstream = createConnection({ host: '127.0.0.1', port: upstreamPort });
  upstream.on('error', () => client.destroy());
  client.on('error', () => upstream.destroy());
  upstream.pipe(client);
  upstream.on('close', () => client.destroy());

  let buf = Buffer.alloc(0);
  // a command being assembled: its first line, then its literal
  let pending = null; // { head: Buffer (line up to the literal marker), size, plus }
  client.on('data', (chunk) => {
    buf = Buffer.concat([buf, chunk]);
    for (;;) {
      if (pending) {
        if (buf.length < pending.size) return;
        const literal = buf.subarray(0, pending.size);
        buf = buf.subarray(pending.size);
        let out = literal;
        if (pending.script && usesRedirect(literal.toString('utf8'))) out = REFUSED;
        upstream.write(Buffer.concat([pending.head, Buffer.from(`{${out.length}+}\r\n`), out]));
        pending = null;
        continue;
      }
      const eol = buf.indexOf('\n');
      if (eol < 0) return;
      const line = buf.subarray(0, eol + 1);
      buf = buf.subarray(eol + 1);
      const text = line.toString('latin1');
      const m = /\{(\d+)(\+?)\}\r?\n$/.exec(text);
      if (!m) {
        upstream.write(line);
        continue;
      }
      pending = {
        head: line.subarray(0, m.index),
        size: Number(m[1]),
        script: /^\s*(PUTSCRIPT|CHECKSCRIPT)\b/i.test(text),
      };
    }
  });
  client.on('end', () => upstream.end());
}

createServer(handle).listen(listen, '127.0.0.1', () => {
  console.log(`bma lab ManageSieve policy proxy on 127.0.0.1:${listen} -> ${upstreamPort}`);
});
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => process.exit(0));
