// A real OpenID provider for the console sign-in tests: the `oidc-provider` package (a certified
// implementation) on 127.0.0.1, with the clients and people the test hands it in CLIENTS and
// ACCOUNTS (JSON), and oidc-provider's own login form. Prints `listening <issuer>` when ready.
import http from "node:http";
import path from "node:path";
import { createRequire } from "node:module";

const prefix = process.env.OIDC_PREFIX;
const require = createRequire(path.join(prefix, "package.json"));
const { default: Provider } = await import(require.resolve("oidc-provider"));

const clients = JSON.parse(process.env.CLIENTS);
const accounts = JSON.parse(process.env.ACCOUNTS); // login -> claims (sub, groups, team, ...)

const server = http.createServer();
await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
const issuer = `http://127.0.0.1:${server.address().port}`;

const provider = new Provider(issuer, {
  clients,
  scopes: ["openid", "profile", "groups"],
  claims: { openid: ["sub"], profile: ["preferred_username", "name"], groups: ["groups", "team"] },
  conformIdTokenClaims: false, // the requested scopes' claims go into the ID token
  pkce: { required: () => true },
  features: { devInteractions: { enabled: true } }, // the package's own login form
  async findAccount(ctx, id) {
    const person = accounts[id];
    if (!person) return undefined;
    return { accountId: id, claims: async () => ({ sub: id, ...person }) };
  },
  // The console is a first-party client: the grant is given at sign-in, no consent screen.
  async loadExistingGrant(ctx) {
    const grantId = ctx.oidc.result?.consent?.grantId
      || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (grantId) return ctx.oidc.provider.Grant.find(grantId);
    const grant = new ctx.oidc.provider.Grant({
      clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId,
    });
    grant.addOIDCScope("openid profile groups");
    grant.addOIDCClaims(["preferred_username", "name", "groups", "team"]);
    await grant.save();
    return grant;
  },
});
// The login form accepts any password; a login that is not one of ACCOUNTS finds no account.
server.on("request", provider.callback());
console.log(`listening ${issuer}`);
