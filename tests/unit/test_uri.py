import pytest

from vida_loader.endpoint import (
    ServerKind,
    Timeouts,
    redact_uri,
    server_kind,
    strip_credentials,
    uri_hosts,
)
from vida_loader.errors import UsageError
from vida_loader.mongo import check_uri, client_options

COSMOS = (
    "mongodb://acct:Zk9/x+Qw==@acct.mongo.cosmos.azure.com:10255/?ssl=true&replicaSet=globaldb"
    "&retrywrites=false&maxIdleTimeMS=120000&appName=@acct@"
)
ATLAS = "mongodb+srv://loader:s3cr%40t@cluster0.ab1cd.mongodb.net/shop?retryWrites=true&w=majority"


def test_credentials_are_stripped_from_stored_uris() -> None:
    assert strip_credentials(COSMOS) == (
        "mongodb://acct.mongo.cosmos.azure.com:10255/?ssl=true&replicaSet=globaldb"
        "&retrywrites=false&maxIdleTimeMS=120000&appName=@acct@"
    )
    assert strip_credentials(ATLAS) == (
        "mongodb+srv://cluster0.ab1cd.mongodb.net/shop?retryWrites=true&w=majority"
    )
    secret_opt = (
        "mongodb://h:1/?authMechanism=MONGODB-AWS&authMechanismProperties=AWS_SESSION_TOKEN:tok"
    )
    assert "tok" not in strip_credentials(secret_opt)


def test_redaction_keeps_the_user_and_hides_the_password() -> None:
    assert redact_uri(COSMOS).startswith("mongodb://acct:***@acct.mongo.cosmos.azure.com:10255/")
    assert "Zk9" not in redact_uri(COSMOS)
    assert "s3cr" not in redact_uri(ATLAS)
    assert redact_uri("mongodb://h1:1,h2:2/db") == "mongodb://h1:1,h2:2/db"
    assert redact_uri("http://user:pw@host") == "http:…"


def test_hosts_and_server_kind() -> None:
    assert uri_hosts(COSMOS) == ["acct.mongo.cosmos.azure.com:10255"]
    assert server_kind(COSMOS) is ServerKind.COSMOS
    assert server_kind("mongodb://x:y@old.documents.azure.com:10255") is ServerKind.COSMOS
    assert server_kind(ATLAS) is ServerKind.ATLAS
    assert server_kind("mongodb://B:1,a:2") is ServerKind.OTHER
    assert uri_hosts("mongodb://B:1,a:2/db") == ["a:2", "b:1"]
    assert uri_hosts("mongodb://u:p@H,[::1],[::2]:5/") == ["[::1]:27017", "[::2]:5", "h:27017"]
    assert uri_hosts("mongodb+srv://u:p@Cluster0.x.mongodb.net/") == ["cluster0.x.mongodb.net"]


@pytest.mark.parametrize(
    "uri, words",
    [
        ("http://u:hunter2@host:27017", "is not a MongoDB URI"),
        ("", "is required"),
        ("mongodb://u:hunter2@host:notaport", "is not a valid MongoDB URI"),
    ],
)
def test_bad_uris_are_refused_without_the_password(uri: str, words: str) -> None:
    with pytest.raises(UsageError) as err:
        check_uri(uri, "--source-uri")
    assert words in str(err.value) and "--source-uri" in str(err.value)
    assert "hunter2" not in str(err.value)


@pytest.mark.parametrize(
    ("uri", "retry_writes", "idle", "app"),
    [
        ("mongodb://h:27017/", None, 120_000, "vida-loader"),
        (
            "mongodb://u:p@acct.mongo.cosmos.azure.com:10255/?ssl=true",
            False,
            120_000,
            "vida-loader",
        ),
        ("mongodb://u:p@acct.documents.azure.com:10255/?ssl=true", False, 120_000, "vida-loader"),
        # Cosmos DB's own connection string: its settings stand.
        (
            "mongodb://u:p@acct.mongo.cosmos.azure.com:10255/?ssl=true&replicaSet=globaldb"
            "&retrywrites=false&maxIdleTimeMS=120000&appName=@acct@",
            None,
            None,
            None,
        ),
        ("mongodb+srv://u:p@c0.abcde.mongodb.net/", None, 120_000, "vida-loader"),
    ],
)
def test_client_options_suit_cosmos_db(
    uri: str, retry_writes: bool | None, idle: int | None, app: str | None
) -> None:
    opts = client_options(uri, Timeouts(select_ms=1, connect_ms=2, socket_ms=3))
    assert opts.get("retryWrites") == retry_writes
    assert opts.get("maxIdleTimeMS") == idle and opts.get("appname") == app
    # Timeouts are always bounded, whatever the URI says.
    assert (opts["serverSelectionTimeoutMS"], opts["connectTimeoutMS"]) == (1, 2)
    assert opts["socketTimeoutMS"] == 3
