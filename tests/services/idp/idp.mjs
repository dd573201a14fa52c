// OAuth2 identity provider for floe-host's tests: oauth2-mock-server used as a
// library, with what its bare CLI lacks for a catalog that validates JWTs:
//
// - client-credentials tokens carry `sub`, `aud`, `tenant_id` and `roles`
//   taken from the client table below (the CLI gives no `sub` and takes `aud`
//   only from an `aud` form field);
// - an unknown client or a wrong secret is refused with 401 `invalid_client`
//   (the CLI accepts any secret);
// - the issuer is pinned to http://127.0.0.1:PORT, the URL the catalog is
//   configured with;
// - the RSA signing key is kept in a file, so a restarted IdP signs with the
//   key the catalog has cached.
//
// Environment:
//   FLOE_IDP_PORT          port to listen on (127.0.0.1)
//   FLOE_IDP_NODE_MODULES  the node_modules dir setup.sh installed (outside the repo)
//   FLOE_IDP_KEY_FILE      where the signing key (JWK, private) is kept
//   FLOE_IDP_AUDIENCE      the `aud` claim of every token (default: floe-catalog)
import { createRequire } from 'node:module';
import { existsSync, readFileSync, writeFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const port = Number(process.env.FLOE_IDP_PORT ?? '0');
const modules = process.env.FLOE_IDP_NODE_MODULES;
const keyFile = process.env.FLOE_IDP_KEY_FILE;
const audience = process.env.FLOE_IDP_AUDIENCE ?? 'floe-catalog';
if (!port || !modules || !keyFile) {
  console.error('idp: FLOE_IDP_PORT, FLOE_IDP_NODE_MODULES and FLOE_IDP_KEY_FILE are required');
  process.exit(2);
}

// The clients the tests use. Tenant `default` is the tenant of the catalog's
// static API key too, so both see the same namespaces. Roles are rustberg's
// built-in Cedar groups: admin = everything, writer = all but delete,
// reader = read and list.
export const CLIENTS = {
  'floe-writer': { secret: 'writer-secret', roles: ['writer'] },
  'floe-admin': { secret: 'admin-secret', roles: ['admin'] },
  'floe-reader': { secret: 'reader-secret', roles: ['reader'] },
  // Tokens that live 3 seconds, for the test of floe-host's token refresh.
  'floe-short': { secret: 'short-secret', roles: ['writer'], lifetime: 3 },
};
const TENANT = 'default';

const require = createRequire(join(modules, 'resolve-from-here.js'));
const { OAuth2Server, Events } = await import(pathToFileURL(require.resolve('oauth2-mock-server')).href);

// Client authentication: HTTP Basic (RFC 6749 §2.3.1) or the form fields.
function clientOf(req) {
  const header = req.headers.authorization ?? '';
  const m = /^basic\s+(.+)$/i.exec(header);
  if (m) {
    const raw = Buffer.from(m[1], 'base64').toString('utf8');
    const i = raw.indexOf(':');
    if (i >= 0) {
      return {
        id: decodeURIComponent(raw.slice(0, i)),
        secret: decodeURIComponent(raw.slice(i + 1)),
      };
    }
  }
  const body = req.body ?? {};
  return { id: body.client_id, secret: body.client_secret };
}

function knownClient(req) {
  const { id, secret } = clientOf(req);
  const client = typeof id === 'string' ? CLIENTS[id] : undefined;
  return client && client.secret === secret ? { id, ...client } : undefined;
}

const server = new OAuth2Server();
if (existsSync(keyFile)) {
  await server.issuer.keys.add(JSON.parse(readFileSync(keyFile, 'utf8')));
} else {
  const key = await server.issuer.keys.generate('RS256');
  const tmp = `${keyFile}.${process.pid}`;
  writeFileSync(tmp, JSON.stringify(key), { mode: 0o600 });
  renameSync(tmp, keyFile);
}
server.issuer.url = `http://127.0.0.1:${port}`;

server.service.on(Events.BeforeTokenSigning, (token, req) => {
  const client = knownClient(req);
  if (req.body?.grant_type !== 'client_credentials' || !client) return;
  Object.assign(token.payload, {
    sub: client.id,
    client_id: client.id,
    aud: audience,
    tenant_id: TENANT,
    roles: client.roles,
  });
  if (client.lifetime) token.payload.exp = Math.floor(Date.now() / 1000) + client.lifetime;
});

server.service.on(Events.BeforeResponse, (response, req) => {
  if (req.body?.grant_type !== 'client_credentials') return;
  const { id } = clientOf(req);
  if (!knownClient(req)) {
    response.statusCode = 401;
    response.body = {
      error: 'invalid_client',
      error_description: CLIENTS[id] ? `wrong client secret for '${id}'` : `unknown client '${id}'`,
    };
    console.error(`idp: refused client '${id}' (invalid_client)`);
  } else {
    const lifetime = CLIENTS[id].lifetime;
    if (lifetime && response.body && typeof response.body === 'object') response.body.expires_in = lifetime;
    console.error(`idp: token for client '${id}'`);
  }
});

await server.start(port, '127.0.0.1');
console.error(`idp: issuer ${server.issuer.url}, token endpoint ${server.issuer.url}/token, audience ${audience}`);

const stop = async () => {
  await server.stop();
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
