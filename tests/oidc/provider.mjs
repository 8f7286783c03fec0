// A real OpenID provider (npm oidc-provider) for Fovea's integration tests: the client-credentials
// grant, JWT access tokens through resource indicators. Started by tests/oidc/provider.py with:
//   OIDC_PORT, OIDC_ISSUER, OIDC_JWKS (a file holding the private signing keys, rotated by restarting
//   the provider with another file).
// Every key set request is logged as a line "JWKS" on stdout, so tests can count Fovea's fetches.
import fs from 'node:fs';
import Provider from 'oidc-provider';

const issuer = process.env.OIDC_ISSUER;
const port = Number(process.env.OIDC_PORT);
const jwks = JSON.parse(fs.readFileSync(process.env.OIDC_JWKS, 'utf8'));
const SCOPES = 'dicom.read dicom.write dicom.delete admin pacs-reader';

// Resource servers the tests ask tokens for: Fovea itself, one with 2-second tokens, and another API.
const RESOURCES = {
  'urn:fovea': { audience: 'urn:fovea', accessTokenTTL: 300 },
  'urn:fovea:short': { audience: 'urn:fovea', accessTokenTTL: 2 },
  'urn:other-api': { audience: 'urn:other-api', accessTokenTTL: 300 },
};

const provider = new Provider(issuer, {
  jwks,
  clients: [
    {
      client_id: 'fovea-tests',
      client_secret: 'fovea-tests-secret',
      grant_types: ['client_credentials'],
      redirect_uris: [],
      response_types: [],
      scope: SCOPES,
      id_token_signed_response_alg: jwks.keys[0].alg,
    },
  ],
  scopes: SCOPES.split(' '),
  ttl: { ClientCredentials: (_ctx, token) => token.resourceServer?.accessTokenTTL ?? 300 },
  features: {
    clientCredentials: { enabled: true },
    devInteractions: { enabled: false },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => 'urn:fovea',
      useGrantedResource: () => true,
      getResourceServerInfo: (_ctx, resource) => {
        const server = RESOURCES[resource];
        if (!server) throw new Error(`unknown resource ${resource}`);
        return {
          scope: SCOPES,
          audience: server.audience,
          accessTokenTTL: server.accessTokenTTL,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: jwks.keys[0].alg } },
        };
      },
    },
  },
});

provider.use(async (ctx, next) => {
  if (ctx.path === '/jwks') console.log('JWKS');
  await next();
});

provider.listen(port, '127.0.0.1', () => console.log(`READY ${issuer}`));
