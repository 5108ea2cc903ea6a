// DPoP (RFC 9449): proofs of possession of a key pair the agent keeps, so
// that a task token stolen from it is useless to anyone else. ES256 with
// WebCrypto; the private key never leaves the process (not extractable).

import { createHash, randomBytes, webcrypto } from 'node:crypto';

const subtle = webcrypto.subtle;

/** The public half of a P-256 key as a JWK, only the members RFC 7638 names. */
export interface PublicJWK {
  kty: 'EC';
  crv: 'P-256';
  x: string;
  y: string;
}

/** A key that signs DPoP proofs. */
export class DPoPKey {
  readonly publicJwk: PublicJWK;
  readonly #privateKey: webcrypto.CryptoKey;
  readonly #header: string;
  #athToken = '';
  #ath = '';

  private constructor(privateKey: webcrypto.CryptoKey, publicJwk: PublicJWK) {
    this.#privateKey = privateKey;
    this.publicJwk = publicJwk;
    this.#header = b64url(JSON.stringify({ typ: 'dpop+jwt', alg: 'ES256', jwk: publicJwk }));
  }

  /** A fresh ES256 key pair whose private key cannot be exported. */
  static async generate(): Promise<DPoPKey> {
    const pair = (await subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
    return DPoPKey.fromKeyPair(pair);
  }

  /** A key pair of the caller's (ECDSA P-256), for example one kept across restarts. */
  static async fromKeyPair(pair: webcrypto.CryptoKeyPair): Promise<DPoPKey> {
    const jwk = await subtle.exportKey('jwk', pair.publicKey);
    if (jwk.kty !== 'EC' || jwk.crv !== 'P-256' || !jwk.x || !jwk.y) {
      throw new TypeError('a DPoP key must be an ECDSA P-256 key pair (ES256)');
    }
    return new DPoPKey(pair.privateKey, { kty: 'EC', crv: 'P-256', x: jwk.x, y: jwk.y });
  }

  /** RFC 7638 thumbprint of the public key: the token's cnf.jkt. */
  thumbprint(): string {
    const { crv, kty, x, y } = this.publicJwk;
    return createHash('sha256').update(JSON.stringify({ crv, kty, x, y })).digest('base64url');
  }

  /**
   * A proof for one request: method and URL (query and fragment are left
   * out, as the server ignores them), and with the access token it goes
   * with (its hash as ath), except at the token endpoint.
   */
  async proof(method: string, url: string, accessToken?: string): Promise<string> {
    const u = new URL(url);
    const claims: Record<string, unknown> = {
      jti: randomBytes(16).toString('base64url'),
      htm: method.toUpperCase(),
      htu: `${u.protocol}//${u.host}${u.pathname}`,
      iat: Math.floor(Date.now() / 1000),
    };
    if (accessToken) {
      if (accessToken !== this.#athToken) {
        this.#athToken = accessToken;
        this.#ath = createHash('sha256').update(accessToken, 'ascii').digest('base64url');
      }
      claims.ath = this.#ath;
    }
    const input = `${this.#header}.${b64url(JSON.stringify(claims))}`;
    // WebCrypto's ECDSA signature is r || s, the JWS encoding (RFC 7518 §3.4).
    const sig = await subtle.sign({ name: 'ECDSA', hash: 'SHA-256' }, this.#privateKey, Buffer.from(input, 'ascii'));
    return `${input}.${Buffer.from(sig).toString('base64url')}`;
  }
}

function b64url(s: string): string {
  return Buffer.from(s, 'utf8').toString('base64url');
}
