"""DPoP (RFC 9449) proofs with ES256, so that a stolen task token is useless
to anyone without the agent's key. Needs the optional `cryptography`
package; the Bearer path does not."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
from typing import Optional
from urllib.parse import urlsplit


def b64url(b: bytes) -> str:
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode("ascii")


class DPoPKey:
    """An ECDSA P-256 key pair that signs DPoP proofs."""

    def __init__(self, private_key=None):
        try:
            from cryptography.hazmat.primitives.asymmetric import ec
        except ImportError as e:  # pragma: no cover - exercised where it is missing
            raise ImportError("DPoP needs the 'cryptography' package: pip install 'writ-sdk[dpop]' "
                              "(on Debian: apt-get install python3-cryptography)") from e
        self._ec = ec
        self._key = private_key or ec.generate_private_key(ec.SECP256R1())
        nums = self._key.public_key().public_numbers()
        self.public_jwk = {"kty": "EC", "crv": "P-256",
                           "x": b64url(nums.x.to_bytes(32, "big")), "y": b64url(nums.y.to_bytes(32, "big"))}
        self._header = b64url(json.dumps({"typ": "dpop+jwt", "alg": "ES256", "jwk": self.public_jwk}, separators=(",", ":")).encode())
        self._ath_token = ""
        self._ath = ""

    def thumbprint(self) -> str:
        """RFC 7638 thumbprint of the public key: the token's cnf.jkt."""
        j = self.public_jwk
        canon = json.dumps({"crv": j["crv"], "kty": j["kty"], "x": j["x"], "y": j["y"]}, separators=(",", ":"))
        return b64url(hashlib.sha256(canon.encode()).digest())

    def proof(self, method: str, url: str, access_token: Optional[str] = None) -> str:
        """A proof for one request (query and fragment left out of htu), with
        ath when it goes with an access token."""
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

        u = urlsplit(url)
        claims = {"jti": b64url(os.urandom(16)), "htm": method.upper(), "htu": f"{u.scheme}://{u.netloc}{u.path}", "iat": int(time.time())}
        if access_token:
            if access_token != self._ath_token:
                self._ath_token = access_token
                self._ath = b64url(hashlib.sha256(access_token.encode("ascii")).digest())
            claims["ath"] = self._ath
        signing_input = f"{self._header}.{b64url(json.dumps(claims, separators=(',', ':')).encode())}"
        der = self._key.sign(signing_input.encode("ascii"), self._ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)
        return f"{signing_input}.{b64url(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"
