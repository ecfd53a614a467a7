// An OpenID Connect server for mailconnect's interoperability tests (tests/oidc_interop.rs):
// panva's oidc-provider (https://github.com/panva/node-oidc-provider, OpenID Certified), installed
// from npm by tests/oidc/install.sh. This file only configures it the way a site would:
//   - one public native client (no secret, loopback redirect, PKCE S256 required), with the
//     authorization code, refresh token and device code grants;
//   - discovery, device flow, RFC 7009 revocation, RFC 7662 introspection, userinfo;
//   - refresh tokens only with offline_access and consent (OIDC Core §11), rotated on every use;
//   - id_tokens with `sub` only (conformIdTokenClaims, the library's default): email and
//     preferred_username come from userinfo;
//   - the development sign-in pages (any login, a password field), users alice and bob.
// Usage: PORT=N [ACCESS_TTL=seconds] node server.mjs   (prints "LISTENING <issuer>" when ready)
import Provider from 'oidc-provider';

const port = Number(process.env.PORT);
const issuer = `http://127.0.0.1:${port}`;
const accessTtl = Number(process.env.ACCESS_TTL || 3600);

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: 'mailconnect-native',
      application_type: 'native',
      token_endpoint_auth_method: 'none',
      redirect_uris: ['http://127.0.0.1/'],
      grant_types: ['authorization_code', 'refresh_token', 'urn:ietf:params:oauth:grant-type:device_code'],
      response_types: ['code'],
    },
  ],
  async findAccount(ctx, sub) {
    return {
      accountId: sub,
      async claims() {
        return {
          sub,
          email: `${sub}@example.test`,
          email_verified: true,
          preferred_username: `${sub}@example.test`,
          name: sub,
        };
      },
    };
  },
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name', 'preferred_username'],
  },
  scopes: ['openid', 'offline_access', 'email', 'profile', 'mail'],
  features: {
    devInteractions: { enabled: true },
    deviceFlow: { enabled: true },
    revocation: { enabled: true },
    introspection: { enabled: true },
    userinfo: { enabled: true },
  },
  rotateRefreshToken: true,
  cookies: { keys: ['mailconnect-interop-tests-only'] },
  ttl: {
    AccessToken: accessTtl,
    AuthorizationCode: 300,
    DeviceCode: 600,
    IdToken: 3600,
    RefreshToken: 86400,
    Interaction: 3600,
    Session: 86400,
    Grant: 86400,
  },
});

provider.listen(port, '127.0.0.1', () => {
  console.log(`LISTENING ${issuer}`);
});
