import { randomBytes } from "node:crypto";
import { join } from "node:path";
import type { Config } from "../config/schema.js";
import type { Logger } from "../log.js";
import { writeSecret } from "../fs/atomic-file.js";
import type { Authenticator } from "./authn/authenticator.js";
import { createCredentialCheck, type CredentialCheck } from "./authn/credential-check.js";
import { createHtpasswdAuthenticator } from "./authn/htpasswd.js";
import { bcryptCost, hashPassword, readHtpasswd, writeHtpasswd } from "./authn/htpasswd-file.js";
import { createPolicy, defaultRules, type Policy, type PolicyRule } from "./authz/policy.js";
import { createRefreshTokens, loadRefreshSecret, type RefreshTokens } from "./token/refresh-tokens.js";
import { loadSigningKeys, type SigningKeyring, type SigningKeyOptions } from "./token/signing-keys.js";
import { createTokens, type Tokens } from "./token/tokens.js";

export interface AuthStack {
  service: string;
  anonymous: boolean;
  /** Members may delete everywhere under the default policy, and ask the policy about anyone. */
  adminGroup: string;
  credentials: CredentialCheck;
  policy: Policy;
  tokens: Tokens;
  refreshTokens: RefreshTokens;
  keyring: () => SigningKeyring;
  /** Throws when a user directory the users depend on (LDAP) cannot be reached; for readiness checks. */
  checkDirectories(): Promise<void>;
  /** Applies what of a changed config auth can take while running: policies and groups (see config/reload.ts). */
  reload(next: Pick<Config, "policies" | "auth">): void;
  close(): Promise<void>;
}

export const htpasswdPath = (config: Pick<Config, "auth" | "certs">) =>
  config.auth.htpasswd.file ?? join(config.certs, "htpasswd");
export const signingKeyDir = (config: Pick<Config, "certs">) => join(config.certs, "token-signing");

export function signingKeyOptions(config: Config, ca: SigningKeyOptions["ca"]): SigningKeyOptions {
  return {
    dir: signingKeyDir(config),
    algorithm: config.auth.signingAlgorithm,
    ca,
    tokenTtlSeconds: config.auth.tokenTtlSeconds,
    libtrustKid: config.auth.libtrustKeyId,
  };
}

export function policyFromConfig(config: Pick<Config, "policies" | "auth">): {
  policy: Policy;
  rules: readonly PolicyRule[];
} {
  const rules = config.policies ?? defaultRules(config.auth.adminGroup);
  return { policy: createPolicy(rules), rules };
}

const refreshSecretPath = (config: Pick<Config, "certs">) => join(config.certs, "refresh-token.secret");

/** Creates the token-signing key and the refresh-token secret when missing: once, before workers start. */
export async function ensureAuthKeys(config: Config, ca: SigningKeyOptions["ca"]): Promise<void> {
  await loadSigningKeys({ ...signingKeyOptions(config, ca), repairMismatch: true });
  await loadRefreshSecret(refreshSecretPath(config));
}

/** Everything token authentication needs, built from the config: users, policy, keys and tokens. */
export async function authFromConfig(
  config: Config,
  deps: { logger: Logger; ca: SigningKeyOptions["ca"]; env?: NodeJS.ProcessEnv; onBcrypt?: () => void },
): Promise<AuthStack> {
  const env = deps.env ?? process.env;
  const htpasswd = createHtpasswdAuthenticator({
    file: htpasswdPath(config),
    groups: config.auth.groups,
    onCompare: deps.onBcrypt,
    logger: deps.logger,
  });
  const authenticators: Authenticator[] = [htpasswd];
  const ldapSettings = config.auth.ldap;
  const ldap = ldapSettings
    ? // Loaded only when configured, like every part a server process may not need.
      (await import("./authn/ldap.js")).createLdapAuthenticator(
        {
          ...ldapSettings,
          bindPassword: ldapSettings.bindPasswordEnv ? env[ldapSettings.bindPasswordEnv] : undefined,
        },
        { logger: deps.logger },
      )
    : undefined;
  if (ldap) authenticators.push(ldap);

  let keyring = await loadSigningKeys({ ...signingKeyOptions(config, deps.ca), repairMismatch: true });
  const refreshTokens = createRefreshTokens(await loadRefreshSecret(refreshSecretPath(config)), {
    ttlDays: config.auth.refreshTokenDays,
  });
  const reloadKeyring = () =>
    loadSigningKeys(signingKeyOptions(config, deps.ca)).then(
      (next) => void (keyring = next),
      (error: unknown) => deps.logger.error({ err: error }, "could not reload the token signing keys"),
    );
  const reloadKeys = setInterval(() => void reloadKeyring(), 2_000);
  reloadKeys.unref();

  const credentials = createCredentialCheck({
    authenticators,
    cacheSeconds: config.auth.credentialCacheSeconds,
    dummyCost: () => htpasswd.commonCost() ?? bcryptCost,
  });
  const { policy } = policyFromConfig(config);
  return {
    service: config.auth.service,
    anonymous: config.auth.anonymous,
    adminGroup: config.auth.adminGroup,
    credentials,
    policy,
    tokens: createTokens(() => keyring, {
      reload: reloadKeyring,
      issuer: config.auth.issuer,
      service: config.auth.service,
      ttlSeconds: config.auth.tokenTtlSeconds,
    }),
    refreshTokens,
    keyring: () => keyring,
    reload(next) {
      policy.replace(policyFromConfig(next).rules);
      htpasswd.setGroups(next.auth.groups);
      // Remembered sign-ins carry the groups they were verified with.
      credentials.forget();
    },
    async checkDirectories() {
      // A lookup of a name no directory holds still has to bind and search, which is what can fail.
      await ldap?.lookup("portcullis-readiness-probe");
    },
    async close() {
      clearInterval(reloadKeys);
      await ldap?.close();
    },
  };
}

/**
 * A first start with no users at all creates `admin` with a random password, written once to a 0600 file;
 * the console names the file, never the password.
 */
export async function ensureFirstUser(config: Config, hintFlags: readonly string[] = []): Promise<string | undefined> {
  if (config.auth.ldap) return undefined;
  const file = htpasswdPath(config);
  const users = await readHtpasswd(file);
  if (users.size > 0) return undefined;
  const password = randomBytes(18).toString("base64url");
  const passwordFile = join(config.certs, "admin-password");
  await writeSecret(passwordFile, `${password}\n`);
  await writeHtpasswd(file, [{ user: "admin", hash: await hashPassword(password) }]);
  return `created the user "admin" (group ${config.auth.adminGroup}); its password is in ${passwordFile} (mode 0600). Change it with: ${["portcullis user passwd admin", ...hintFlags].join(" ")}`;
}
