// A real OpenID Connect provider for Strøm's tests (npm package oidc-provider@9).
// Usage: node provider.mjs PORT REDIRECT_URI...
// `cargo xtask oidc` installs oidc-provider and copies this file next to its node_modules (an ES
// module resolves its imports next to itself). Any login name is accepted (devInteractions);
// the subject is that name and the e-mail <name>@example.test, verified — except for names
// starting with `unverified`, whose e-mail is not verified, and `noemail`, which has none.
// The login and consent pages are driven by plain HTTP in tests/it/auth/oidc.rs.
import Provider from 'oidc-provider';

const port = Number(process.argv[2] || 9400);
const redirects = process.argv.slice(3);
const issuer = `http://127.0.0.1:${port}`;
const provider = new Provider(issuer, {
  clients: [{
    client_id: 'stroem', client_secret: 'stroem-secret', redirect_uris: redirects,
    grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  async findAccount(ctx, id) {
    return {
      accountId: id,
      async claims() {
        if (id.startsWith('noemail')) return { sub: id, name: id };
        return { sub: id, email: `${id}@example.test`, email_verified: !id.startsWith('unverified'), name: id };
      },
    };
  },
  claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
  features: { devInteractions: { enabled: true } },
  pkce: { required: () => true },
});
provider.listen(port, '127.0.0.1', () => console.log(`oidc-provider listening on ${issuer}`));
