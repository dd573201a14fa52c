"""Proof that the test services work, through a real Iceberg client (pyiceberg 0.12).

Needs the services running and their env (scripts/services.sh start; then
set -a; source "$(scripts/services.sh env)"; set +a), or run via scripts/test.sh.

  (a) rustberg + static token, local warehouse: namespace, table, append, read back;
  (b) the same through OAuth2 client credentials from the IdP;
  (c) rustberg with its warehouse on moto S3;
  (d) a wrong client secret fails with the IdP's 401 invalid_client.
"""

import os
import sys
import uuid

import pyarrow as pa
from pyiceberg.catalog import load_catalog

E = os.environ
RUN = uuid.uuid4().hex[:8]
DATA = pa.table({"id": pa.array([1, 2, 3], pa.int64()), "name": pa.array(["a", "b", "c"], pa.string())})


def s3_props():
    return {
        "s3.endpoint": E["FLOE_TEST_S3_ENDPOINT"],
        "s3.access-key-id": E["FLOE_TEST_S3_ACCESS_KEY"],
        "s3.secret-access-key": E["FLOE_TEST_S3_SECRET_KEY"],
        "s3.region": E["FLOE_TEST_S3_REGION"],
        "s3.path-style-access": "true",
    }


def oauth_props(client_id, secret):
    return {
        "credential": f"{client_id}:{secret}",
        "oauth2-server-uri": E["FLOE_TEST_OAUTH_TOKEN_URL"],
        "scope": E["FLOE_TEST_OAUTH_SCOPE"],
    }


def round_trip(label, props, namespace):
    catalog = load_catalog(label, **{"type": "rest", **props})
    catalog.create_namespace_if_not_exists(namespace)
    ident = (namespace, f"t_{RUN}")
    table = catalog.create_table(ident, schema=DATA.schema)
    table.append(DATA)
    table.append(DATA)
    # A fresh load: what the catalog committed, not the client's cached copy.
    back = catalog.load_table(ident).scan().to_arrow()
    assert back.num_rows == 2 * DATA.num_rows, f"{label}: read {back.num_rows} rows"
    assert sorted(back.column("id").to_pylist()) == [1, 1, 2, 2, 3, 3]
    location = catalog.load_table(ident).metadata_location
    print(f"ok {label}: {'.'.join(ident)} has {back.num_rows} rows; metadata {location}")
    return location


def main():
    if E.get("FLOE_TEST_SERVICES") != "1":
        sys.exit("services_smoke: no test services env (run scripts/services.sh start and source its env file)")

    # (a) static token, local warehouse
    loc = round_trip(
        "static-token",
        {"uri": E["FLOE_TEST_REST_URI"], "token": E["FLOE_TEST_REST_TOKEN"]},
        f"smoke_token_{RUN}",
    )
    assert loc.startswith(E["FLOE_TEST_REST_WAREHOUSE"]), loc

    # (b) OAuth2 client credentials, local warehouse
    round_trip(
        "oauth2",
        {"uri": E["FLOE_TEST_REST_URI"], **oauth_props(E["FLOE_TEST_OAUTH_CLIENT_ID"], E["FLOE_TEST_OAUTH_CLIENT_SECRET"])},
        f"smoke_oauth_{RUN}",
    )

    # (c) S3 warehouse on moto, through OAuth2 (the static token works the same)
    loc = round_trip(
        "s3-warehouse",
        {
            "uri": E["FLOE_TEST_REST_S3_URI"],
            **oauth_props(E["FLOE_TEST_OAUTH_CLIENT_ID"], E["FLOE_TEST_OAUTH_CLIENT_SECRET"]),
            **s3_props(),
        },
        f"smoke_s3_{RUN}",
    )
    assert loc.startswith(E["FLOE_TEST_REST_S3_WAREHOUSE"]), loc

    # (d) wrong client secret: refused at the token endpoint
    try:
        load_catalog(
            "bad-secret",
            **{"type": "rest", "uri": E["FLOE_TEST_REST_URI"], **oauth_props(E["FLOE_TEST_OAUTH_CLIENT_ID"], "wrong")},
        ).list_namespaces()
    except Exception as e:  # pyiceberg raises OAuthError
        text = f"{type(e).__name__}: {e}"
        assert "invalid_client" in text, text
        print(f"ok bad-secret: refused ({text})")
    else:
        raise AssertionError("a wrong client secret was accepted")

    print("services smoke: 4 passed, 0 failed")


if __name__ == "__main__":
    main()
