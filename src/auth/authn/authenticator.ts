/** Who a caller turned out to be, and which authenticator vouched for it. */
export interface Identity {
  name: string;
  groups: readonly string[];
  source: "htpasswd" | "ldap" | "anonymous";
  /**
   * Changes whenever the user's credential changes (a hash of the stored password hash for htpasswd, empty
   * where the source cannot tell). Refresh tokens carry it, so a password change revokes them.
   */
  credentialStamp: string;
}

/** The credentials were checked and are wrong, or the user does not exist: callers cannot tell which. */
export class CredentialsRejected extends Error {
  constructor() {
    super("invalid username or password");
    this.name = "CredentialsRejected";
  }
}

/** The authenticator could not answer (LDAP down, timed out): a 503-class failure, never "wrong password". */
export class AuthenticatorUnavailable extends Error {
  constructor(
    readonly source: Identity["source"],
    message: string,
  ) {
    super(message);
    this.name = "AuthenticatorUnavailable";
  }
}

export interface Authenticator {
  readonly source: Identity["source"];
  /**
   * Resolves to the identity when the password is right; to undefined when this authenticator does not know
   * the user (so the next one may); throws CredentialsRejected when it knows the user and the password is
   * wrong, or AuthenticatorUnavailable when it cannot tell.
   */
  authenticate(username: string, password: string): Promise<Identity | undefined>;
  /** The user's current identity without a password (refresh grants); undefined when the user is gone. */
  lookup(username: string): Promise<Identity | undefined>;
}
