#!/usr/bin/env python3
"""Independent checks of a kiln bundle's SBOMs and DSSE envelopes.

usage: validate.py DIR PUBKEY [VSA]

DIR is an extracted bundle; PUBKEY a kiln/Nix public key file (NAME:BASE64).
Checks sbom.cdx.json with cyclonedx-python-lib (strict JSON schema 1.6 and
Bom.validate), sbom.spdx.json with spdx-tools, and provenance.dsse.json (and
VSA, if given) with securesystemslib's DSSE implementation. Prints one line
per check; exits 1 on the first failure.
"""
import base64
import json
import sys
from pathlib import Path


def fail(msg):
    print(f"FAIL {msg}")
    sys.exit(1)


def check_cyclonedx(path):
    from cyclonedx.model.bom import Bom
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    text = path.read_text()
    errors = JsonStrictValidator(SchemaVersion.V1_6).validate_str(text)
    if errors:
        fail(f"cyclonedx schema: {errors}")
    bom = Bom.from_json(json.loads(text))
    bom.validate()
    n = len(bom.components) + (1 if bom.metadata.component else 0)
    print(f"ok cyclonedx 1.6 strict + Bom.validate: {n} components")


def check_spdx(path):
    from spdx_tools.spdx.parser.parse_anything import parse_file
    from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document

    doc = parse_file(str(path))
    messages = validate_full_spdx_document(doc)
    if messages:
        fail("spdx: " + "; ".join(m.validation_message for m in messages))
    print(f"ok spdx 2.3 (spdx-tools): {len(doc.packages)} packages")


def check_dsse(path, pubkey, predicate_type):
    from securesystemslib.dsse import Envelope
    from securesystemslib.signer import SSlibKey

    name, b64 = pubkey.read_text().strip().split(":", 1)
    key = SSlibKey(name, "ed25519", "ed25519", {"public": base64.b64decode(b64).hex()})
    envelope = Envelope.from_dict(json.loads(path.read_text()))
    try:
        accepted = envelope.verify([key], 1)
    except Exception as e:  # VerificationError and friends
        fail(f"dsse {path.name}: {e}")
    statement = json.loads(envelope.payload)
    if statement.get("predicateType") != predicate_type:
        fail(f"{path.name}: predicateType {statement.get('predicateType')}")
    print(f"ok dsse {path.name} (securesystemslib): signed by {', '.join(accepted)}")


def main():
    directory, pubkey = Path(sys.argv[1]), Path(sys.argv[2])
    check_cyclonedx(directory / "sbom.cdx.json")
    check_spdx(directory / "sbom.spdx.json")
    check_dsse(directory / "provenance.dsse.json", pubkey, "https://slsa.dev/provenance/v1")
    if len(sys.argv) > 3:
        check_dsse(Path(sys.argv[3]), pubkey, "https://slsa.dev/verification_summary/v1")


if __name__ == "__main__":
    main()
