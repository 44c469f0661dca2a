"""C2PA Content Credentials: the signing credentials, signing a PNG's manifest, and reading one back.

The manifest says what made the image (action `c2pa.created` with the IPTC digital source type
`trainedAlgorithmicMedia` and the model as software agent) and is signed with the certificate chain of
`FLUX_DEMO_C2PA_CERT` / `FLUX_DEMO_C2PA_KEY`. Without them, a local root certificate and a signing
certificate issued by it are made on first use and kept in `Settings.c2pa_dir`: verifiers then report a
valid signature from an untrusted signer (`signingCredential.untrusted`), see docs/provenance.md.
"""

from __future__ import annotations

import datetime
import io
import json
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path

from flux_demo import __version__
from flux_demo.provenance.marks import DIGITAL_SOURCE_TYPE

log = logging.getLogger(__name__)

CHAIN_FILE, KEY_FILE = "chain.pem", "key.pem"  # the self-signed pair in Settings.c2pa_dir
SELF_SIGNED_ORGANISATION = "flux-demo (self-signed, not on any C2PA trust list)"
SELF_SIGNED_DAYS = 365
# Validation codes that say a manifest was tampered with or does not belong to the file; the others
# ("signingCredential.untrusted" for a self-signed chain, OCSP skipped) only say how far it is trusted.
BROKEN = ("mismatch", "invalid", "missing", "revoked", "expired", "outsideValidity")


@dataclass(frozen=True)
class Credentials:
    chain_pem: bytes  # the signing certificate first, then its issuers
    key_pem: bytes
    self_signed: bool


def load_credentials(files: tuple[Path, Path] | None, folder: Path) -> Credentials:
    """The configured (certificate chain, key) PEM files, or the self-signed pair in `folder` (made,
    or made again once it expires)."""
    if files is not None:
        chain, key = files
        return Credentials(chain.read_bytes(), key.read_bytes(), self_signed=False)
    chain, key = folder / CHAIN_FILE, folder / KEY_FILE
    if not (chain.exists() and key.exists() and not _expires_soon(chain.read_bytes())):
        _write_self_signed(folder)
    return Credentials(chain.read_bytes(), key.read_bytes(), self_signed=True)


def _expires_soon(chain_pem: bytes) -> bool:
    from cryptography import x509

    leaf = x509.load_pem_x509_certificates(chain_pem)[0]
    return leaf.not_valid_after_utc < datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(
        days=1
    )


def _certificate(subject, issuer, public_key, signing_key, *, ca: bool, days: int):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import ExtendedKeyUsageOID

    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=0 if ca else None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(signing_key.public_key()), critical=False
        )
    )
    # C2PA (like S/MIME) wants a CA that only signs certificates, and a leaf that only signs documents.
    usage = dict.fromkeys(
        ("content_commitment", "key_encipherment", "data_encipherment", "key_agreement", "crl_sign"), False
    )
    usage |= {"encipher_only": False, "decipher_only": False}
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(digital_signature=False, key_cert_sign=True, **{**usage, "crl_sign": True}),
            critical=True,
        )
    else:
        builder = builder.add_extension(
            x509.KeyUsage(digital_signature=True, key_cert_sign=False, **usage), critical=True
        ).add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
    return builder.sign(signing_key, hashes.SHA256())


def _write_self_signed(folder: Path) -> None:
    """A local root (self-signed) and an ES256 signing certificate issued by it: C2PA refuses a signing
    certificate that signs itself."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    def name(common_name: str):
        return x509.Name(
            [
                x509.NameAttribute(NameOID.COMMON_NAME, common_name),
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, SELF_SIGNED_ORGANISATION),
            ]
        )

    root_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    root_name = name("flux-demo local root")
    days = SELF_SIGNED_DAYS + 1  # the root outlives its leaf
    root = _certificate(root_name, root_name, root_key.public_key(), root_key, ca=True, days=days)
    leaf = _certificate(
        name("flux-demo signer"), root_name, key.public_key(), root_key, ca=False, days=SELF_SIGNED_DAYS
    )
    folder.mkdir(parents=True, exist_ok=True)
    pem = serialization.Encoding.PEM
    (folder / CHAIN_FILE).write_bytes(leaf.public_bytes(pem) + root.public_bytes(pem))
    key_path = folder / KEY_FILE
    key_path.unlink(missing_ok=True)
    descriptor = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # readable by its owner only
    with os.fdopen(descriptor, "wb") as file:
        file.write(key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    log.warning("C2PA: made a self-signed signing certificate in %s (set FLUX_DEMO_C2PA_CERT/_KEY)", folder)


def _algorithm(key_pem: bytes) -> str:
    """The C2PA signing algorithm for a private key: es256/es384/es512, ps256 (RSA) or ed25519."""
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    key = load_pem_private_key(key_pem, password=None)
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return {256: "es256", 384: "es384", 521: "es512"}[key.curve.key_size]
    if isinstance(key, rsa.RSAPrivateKey):
        return "ps256"
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return "ed25519"
    raise ValueError(f"C2PA: unsupported private key type {type(key).__name__}")


def manifest(title: str, model_name: str | None, parameters: dict[str, str]) -> dict:
    """The manifest definition for one generated image."""
    created = {"action": "c2pa.created", "digitalSourceType": DIGITAL_SOURCE_TYPE, "parameters": parameters}
    if model_name:
        created["softwareAgent"] = {"name": model_name}
    return {
        "claim_generator_info": [{"name": "flux-demo", "version": __version__}],
        "title": title,
        "assertions": [{"label": "c2pa.actions.v2", "data": {"actions": [created]}}],
    }


class ManifestSigner:
    """Signs PNGs with one set of credentials (the native signer is built once, used under a lock)."""

    def __init__(self, credentials: Credentials):
        import c2pa

        info = c2pa.C2paSignerInfo(
            _algorithm(credentials.key_pem), credentials.chain_pem, credentials.key_pem, None
        )
        self.credentials = credentials
        self._signer = c2pa.Signer.from_info(info)
        # No thumbnail: the image is the file itself, and encoding one costs more than the signature.
        self._context = c2pa.Context.from_dict({"builder": {"thumbnail": {"enabled": False}}})
        self._lock = threading.Lock()

    def sign_png(self, png: bytes, destination: Path, definition: dict) -> None:
        """Write `png` with a signed C2PA manifest (`definition`) embedded to `destination`."""
        import c2pa

        with (
            self._lock,
            open(destination, "w+b") as output,
            c2pa.Builder(definition, self._context) as builder,
        ):
            builder.sign(self._signer, "image/png", io.BytesIO(png), output)


def read_manifest(path: str | Path, mime_type: str) -> dict | None:
    """A summary of the active C2PA manifest in the file at `path`, or None when there is none (or the
    format cannot carry one): title, claim generator, signer, actions, validation state and codes."""
    import c2pa

    if mime_type not in c2pa.Reader.get_supported_mime_types():
        return None
    with open(path, "rb") as file:
        try:
            reader = c2pa.Reader.try_create(mime_type, file)
        except c2pa.C2paError as err:  # a damaged or foreign manifest: say so rather than fail
            return {
                "validation_state": "Invalid",
                "validation_status": [type(err).__name__],
                "error": str(err),
            }
        if reader is None:
            return None
        with reader:
            store = json.loads(reader.json())
    active = store.get("manifests", {}).get(store.get("active_manifest"), {})
    actions = [
        action
        for assertion in active.get("assertions", [])
        if str(assertion.get("label", "")).startswith("c2pa.actions")
        for action in assertion.get("data", {}).get("actions", [])
    ]
    signature = active.get("signature_info", {})
    codes = [status.get("code") for status in store.get("validation_status", [])]
    return {
        "title": active.get("title"),
        "claim_generator": [
            f"{info.get('name')} {info.get('version', '')}".strip()
            for info in active.get("claim_generator_info", [])
        ],
        "signer": {"common_name": signature.get("common_name"), "issuer": signature.get("issuer")},
        "actions": [
            {
                "action": action.get("action"),
                "digital_source_type": action.get("digitalSourceType"),
                "software_agent": _agent_name(action.get("softwareAgent")),
            }
            for action in actions
        ],
        "validation_state": store.get("validation_state"),
        "validation_status": codes,
        "intact": not any(any(word in (code or "") for word in BROKEN) for code in codes),
    }


def _agent_name(agent) -> str | None:
    """A software agent's name: a claim v2 action holds an object, a v1 action a string."""
    return agent.get("name") if isinstance(agent, dict) else agent


def digital_source_type(summary: dict | None) -> str | None:
    """The digital source type of a manifest summary's first action that declares one."""
    for action in (summary or {}).get("actions", []):
        if action.get("digital_source_type"):
            return action["digital_source_type"]
    return None
