"""The SimpleTuner server's own storage code, trimmed to what the compatibility tests need.

Every SQL statement, pragma, key rule and hash formula below is copied unchanged from
SimpleTuner (commit bc8e6ab7738ce457a2ed8eb2d26cadd91c6442cb), from
simpletuner/simpletuner_sdk/server/services/cloud/:

- storage/base.py                       BaseSQLiteStore._get_connection
- storage/provider_config_store.py      ProviderConfigStore (_init_schema, save_sync, get_sync,
                                        list_providers)
- auth/stores/user_crud_store.py        the users table
- auth/stores/credential_store.py       CredentialStore (_init_schema, set, get)
- auth/credential_encryption.py         _derive_key, decrypt_credential
- audit.py                              AuditStore (_get_or_create_signing_key,
                                        _get_connection, _init_db, _compute_entry_hash,
                                        _get_last_hash, log, query, verify_chain)

Only the class scaffolding (singletons, asyncio executors) is removed: the tests run the
original's statements against the files the Rust store then opens, and the original's readers
and verifier against the files the Rust store wrote.

Usage: python simpletuner_original_store.py COMMAND STATE_DIR < request.json > answer.json
"""

import base64
import hashlib
import hmac
import json
import os
import secrets
import sqlite3
import sys
from datetime import datetime, timezone
from pathlib import Path


# --- storage/base.py ------------------------------------------------------------------------

def jobs_connection(db_path):
    conn = sqlite3.connect(
        str(db_path),
        timeout=30.0,
        isolation_level="IMMEDIATE",
    )
    conn.row_factory = sqlite3.Row
    # Enable foreign keys and WAL mode for better concurrency
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    # Busy timeout for multi-worker lock contention (30 seconds)
    conn.execute("PRAGMA busy_timeout = 30000")
    return conn


# --- storage/provider_config_store.py -------------------------------------------------------

def provider_config_init_schema(conn):
    cursor = conn.cursor()
    cursor.execute(
        """
        CREATE TABLE IF NOT EXISTS provider_config (
            provider TEXT PRIMARY KEY,
            config TEXT NOT NULL DEFAULT '{}',
            updated_at TEXT NOT NULL
        )
    """
    )
    conn.commit()


def provider_config_save_sync(conn, provider, config):
    cursor = conn.cursor()
    cursor.execute(
        """
        INSERT OR REPLACE INTO provider_config (provider, config, updated_at)
        VALUES (?, ?, ?)
    """,
        (provider, json.dumps(config), datetime.now(timezone.utc).isoformat()),
    )
    conn.commit()


def provider_config_get_sync(conn, provider):
    cursor = conn.cursor()
    cursor.execute("SELECT config FROM provider_config WHERE provider = ?", (provider,))
    row = cursor.fetchone()
    if row:
        try:
            return json.loads(row["config"])
        except json.JSONDecodeError:
            return {}
    return {}


def provider_config_list_providers(conn):
    cursor = conn.cursor()
    cursor.execute("SELECT provider FROM provider_config ORDER BY provider")
    return [row["provider"] for row in cursor.fetchall()]


# --- auth/stores/user_crud_store.py ---------------------------------------------------------

def users_init_schema(cursor):
    cursor.execute(
        """
        CREATE TABLE IF NOT EXISTS users (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            email TEXT UNIQUE NOT NULL,
            username TEXT UNIQUE NOT NULL,
            display_name TEXT,
            avatar_url TEXT,
            auth_provider TEXT NOT NULL DEFAULT 'local',
            password_hash TEXT,
            external_id TEXT,
            is_active INTEGER NOT NULL DEFAULT 1,
            is_admin INTEGER NOT NULL DEFAULT 0,
            email_verified INTEGER NOT NULL DEFAULT 0,
            created_at TEXT NOT NULL,
            last_login_at TEXT,
            org_id INTEGER,
            metadata TEXT DEFAULT '{}'
        )
    """
    )


# --- auth/stores/credential_store.py --------------------------------------------------------

def credentials_init_schema(cursor):
    cursor.execute(
        """
        CREATE TABLE IF NOT EXISTS provider_credentials (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            user_id INTEGER NOT NULL,
            provider TEXT NOT NULL,
            credential_name TEXT NOT NULL,
            credential_value TEXT NOT NULL,
            created_at TEXT NOT NULL,
            updated_at TEXT,
            last_used_at TEXT,
            is_active INTEGER NOT NULL DEFAULT 1,
            FOREIGN KEY (user_id) REFERENCES users(id) ON DELETE CASCADE,
            UNIQUE(user_id, provider, credential_name)
        )
    """
    )
    cursor.execute("CREATE INDEX IF NOT EXISTS idx_provider_creds_user ON provider_credentials(user_id)")
    cursor.execute("CREATE INDEX IF NOT EXISTS idx_provider_creds_provider ON provider_credentials(provider)")


def credentials_set(conn, user_id, provider, credential_name, credential_value):
    now = datetime.now(timezone.utc).isoformat()
    cursor = conn.cursor()
    cursor.execute(
        """
        INSERT INTO provider_credentials
        (user_id, provider, credential_name, credential_value, created_at, is_active)
        VALUES (?, ?, ?, ?, ?, 1)
        ON CONFLICT(user_id, provider, credential_name) DO UPDATE SET
            credential_value = excluded.credential_value,
            updated_at = ?,
            is_active = 1
        """,
        (user_id, provider, credential_name, credential_value, now, now),
    )
    cred_id = cursor.lastrowid
    conn.commit()
    return cred_id


def credentials_get(conn, user_id, provider, credential_name):
    cursor = conn.cursor()
    cursor.execute(
        """
        SELECT credential_value
        FROM provider_credentials
        WHERE user_id = ? AND provider = ? AND credential_name = ? AND is_active = 1
        """,
        (user_id, provider, credential_name),
    )
    row = cursor.fetchone()
    return row["credential_value"] if row else None


# --- auth/credential_encryption.py ----------------------------------------------------------

def _derive_key(secret: str) -> bytes:
    app_salt = b"simpletuner-credential-encryption-v1"
    key = hashlib.pbkdf2_hmac(
        "sha256",
        secret.encode("utf-8"),
        app_salt,
        iterations=100_000,
        dklen=32,
    )
    return base64.urlsafe_b64encode(key)


def decrypt_credential(passphrase: str, ciphertext: str) -> str:
    from cryptography.fernet import Fernet

    fernet = Fernet(_derive_key(passphrase))
    encrypted = base64.urlsafe_b64decode(ciphertext.encode("ascii"))
    decrypted = fernet.decrypt(encrypted)
    return decrypted.decode("utf-8")


# --- audit.py -------------------------------------------------------------------------------

class AuditStore:
    def __init__(self, db_path):
        self._db_path = Path(db_path)
        self._db_path.parent.mkdir(parents=True, exist_ok=True)
        self._signing_key = self._get_or_create_signing_key()
        self._init_db()

    def _get_or_create_signing_key(self) -> bytes:
        env_key = os.environ.get("SIMPLETUNER_AUDIT_KEY")
        if env_key:
            return env_key.encode("utf-8")
        key_path = self._db_path.parent / "audit.key"
        if key_path.exists():
            return key_path.read_bytes()
        key = secrets.token_bytes(32)
        key_path.write_bytes(key)
        key_path.chmod(0o600)
        return key

    def _get_connection(self):
        conn = sqlite3.connect(str(self._db_path), timeout=30.0)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA foreign_keys=ON")
        return conn

    def _init_db(self):
        conn = self._get_connection()
        try:
            cursor = conn.cursor()
            cursor.execute(
                """
                CREATE TABLE IF NOT EXISTS audit_log (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    timestamp TEXT NOT NULL,
                    event_type TEXT NOT NULL,
                    actor_id INTEGER,
                    actor_username TEXT,
                    actor_ip TEXT,
                    target_type TEXT,
                    target_id TEXT,
                    action TEXT NOT NULL,
                    details TEXT NOT NULL DEFAULT '{}',
                    previous_hash TEXT NOT NULL,
                    entry_hash TEXT NOT NULL
                )
            """
            )
            cursor.execute("CREATE INDEX IF NOT EXISTS idx_audit_timestamp ON audit_log(timestamp)")
            cursor.execute("CREATE INDEX IF NOT EXISTS idx_audit_event_type ON audit_log(event_type)")
            cursor.execute("CREATE INDEX IF NOT EXISTS idx_audit_actor ON audit_log(actor_id)")
            cursor.execute("CREATE INDEX IF NOT EXISTS idx_audit_target ON audit_log(target_type, target_id)")
            conn.commit()
        finally:
            conn.close()

    def _compute_entry_hash(self, timestamp, event_type, actor_id, action, details, previous_hash):
        data = f"{timestamp}|{event_type}|{actor_id}|{action}|{details}|{previous_hash}"
        return hmac.new(
            self._signing_key,
            data.encode("utf-8"),
            hashlib.sha256,
        ).hexdigest()

    def _get_last_hash(self, conn):
        cursor = conn.cursor()
        cursor.execute("SELECT entry_hash FROM audit_log ORDER BY id DESC LIMIT 1")
        row = cursor.fetchone()
        return row["entry_hash"] if row else "genesis"

    # The body of AuditStore.log's _log(); `timestamp` may be given to make old rows.
    def log(self, event_type, action, actor_id=None, actor_username=None, actor_ip=None,
            target_type=None, target_id=None, details=None, timestamp=None):
        timestamp = timestamp or datetime.now(timezone.utc).isoformat()
        details_json = json.dumps(details or {})
        conn = self._get_connection()
        try:
            cursor = conn.cursor()
            previous_hash = self._get_last_hash(conn)
            entry_hash = self._compute_entry_hash(
                timestamp, event_type, actor_id, action, details_json, previous_hash,
            )
            cursor.execute(
                """
                INSERT INTO audit_log (
                    timestamp, event_type, actor_id, actor_username, actor_ip,
                    target_type, target_id, action, details, previous_hash, entry_hash
                ) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """,
                (timestamp, event_type, actor_id, actor_username, actor_ip, target_type,
                 target_id, action, details_json, previous_hash, entry_hash),
            )
            conn.commit()
            return cursor.lastrowid
        finally:
            conn.close()

    # The body of AuditStore.query's _query() with its defaults.
    def query(self, limit=100, offset=0):
        conn = self._get_connection()
        try:
            cursor = conn.cursor()
            cursor.execute("SELECT * FROM audit_log WHERE 1=1 ORDER BY id DESC LIMIT ? OFFSET ?", [limit, offset])
            return [
                dict(
                    id=row["id"], timestamp=row["timestamp"], event_type=row["event_type"],
                    actor_id=row["actor_id"], actor_username=row["actor_username"],
                    actor_ip=row["actor_ip"], target_type=row["target_type"],
                    target_id=row["target_id"], action=row["action"],
                    details=json.loads(row["details"]), previous_hash=row["previous_hash"],
                    entry_hash=row["entry_hash"],
                )
                for row in cursor.fetchall()
            ]
        finally:
            conn.close()

    # The body of AuditStore.verify_chain's _verify() over the whole table.
    def verify_chain(self):
        conn = self._get_connection()
        try:
            cursor = conn.cursor()
            cursor.execute("SELECT * FROM audit_log ORDER BY id ASC")
            entries = cursor.fetchall()
            if not entries:
                return {"valid": True, "entries_checked": 0, "broken_links": []}
            broken_links = []
            expected_previous = "genesis"
            for row in entries:
                if row["previous_hash"] != expected_previous:
                    broken_links.append({"id": row["id"], "expected_previous": expected_previous,
                                         "actual_previous": row["previous_hash"]})
                computed_hash = self._compute_entry_hash(
                    row["timestamp"], row["event_type"], row["actor_id"], row["action"],
                    row["details"], row["previous_hash"],
                )
                if computed_hash != row["entry_hash"]:
                    broken_links.append({"id": row["id"], "error": "hash_mismatch"})
                expected_previous = row["entry_hash"]
            return {
                "valid": len(broken_links) == 0,
                "entries_checked": len(entries),
                "broken_links": broken_links,
                "first_id": entries[0]["id"] if entries else None,
                "last_id": entries[-1]["id"] if entries else None,
            }
        finally:
            conn.close()


# --- the test driver ------------------------------------------------------------------------

def write(state, request):
    jobs = state / "cloud" / "jobs.db"
    jobs.parent.mkdir(parents=True, exist_ok=True)
    conn = jobs_connection(jobs)
    provider_config_init_schema(conn)
    cursor = conn.cursor()
    users_init_schema(cursor)
    credentials_init_schema(cursor)
    conn.commit()
    for provider, config in request.get("configs", {}).items():
        provider_config_save_sync(conn, provider, config)
    for provider in request.get("python_only_configs", []):
        # What json.dumps writes beyond JSON: NaN, infinities, lone surrogates, big integers.
        provider_config_save_sync(conn, provider, python_only_config())
    for provider, text in request.get("raw_configs", {}).items():
        conn.execute("INSERT OR REPLACE INTO provider_config (provider, config, updated_at) VALUES (?, ?, ?)",
                     (provider, text, datetime.now(timezone.utc).isoformat()))
        conn.commit()
    def ensure_user(user_id):
        conn.execute("INSERT OR IGNORE INTO users (id, email, username, created_at) VALUES (?, ?, ?, ?)",
                     (user_id, f"u{user_id}@example.invalid", f"u{user_id}",
                      datetime.now(timezone.utc).isoformat()))
        conn.commit()

    for cred in request.get("credentials", []):
        ensure_user(cred["user_id"])
        credentials_set(conn, cred["user_id"], cred["provider"], cred["name"], cred["value"])
    for cred in request.get("deleted_credentials", []):
        ensure_user(cred["user_id"])
        credentials_set(conn, cred["user_id"], cred["provider"], cred["name"], cred["value"])
        conn.execute("DELETE FROM provider_credentials WHERE user_id = ? AND provider = ? AND credential_name = ?",
                     (cred["user_id"], cred["provider"], cred["name"]))
        conn.commit()
    if request.get("audit"):
        store = AuditStore(state / "audit.db")
        for event in request["audit"]:
            store.log(**event)
    if request.get("crash"):
        # Like a server that was killed: no checkpoint, the write-ahead log keeps the pages.
        sys.stdout.write("{}")
        sys.stdout.flush()
        os._exit(0)
    conn.close()
    return {}


def python_only_config():
    return {
        "nan": float("nan"), "inf": float("inf"), "ninf": float("-inf"), "lone": "a\ud800b",
        "big": 2 ** 70, "neg_big": -(2 ** 70), "keep": 1, "webhook_secret": "PLAIN-PY-SECRET",
    }


def python_only_check(config):
    """Which values of python_only_config() are still exactly as written (no NaN in the answer)."""
    import math
    return {
        "nan": isinstance(config.get("nan"), float) and math.isnan(config["nan"]),
        "inf": config.get("inf") == float("inf"),
        "ninf": config.get("ninf") == float("-inf"),
        "lone": config.get("lone") == "a\ud800b",
        "big": config.get("big") == 2 ** 70 and isinstance(config["big"], int),
        "neg_big": config.get("neg_big") == -(2 ** 70) and isinstance(config["neg_big"], int),
        "keep": config.get("keep"),
        "webhook_secret_plain": config.get("webhook_secret") == "PLAIN-PY-SECRET",
    }


def read(state, request):
    jobs = state / "cloud" / "jobs.db"
    conn = jobs_connection(jobs)
    if "python_only_check" in request:
        answer = {p: python_only_check(provider_config_get_sync(conn, p)) for p in request["python_only_check"]}
        conn.close()
        return answer
    answer = {
        "providers": provider_config_list_providers(conn),
        "configs": {p: provider_config_get_sync(conn, p) for p in provider_config_list_providers(conn)},
        "credentials": [
            credentials_get(conn, c["user_id"], c["provider"], c["name"]) for c in request.get("credentials", [])
        ],
    }
    conn.close()
    if (state / "audit.db").exists():
        store = AuditStore(state / "audit.db")
        answer["verify"] = store.verify_chain()
        answer["audit"] = store.query(limit=1000)
    if "passphrase" in request:
        answer["decrypted"] = [
            decrypt_credential(request["passphrase"], value) for value in request.get("decrypt", [])
        ]
    return answer


def isoformat(state, request):
    return [
        datetime.fromtimestamp(m // 1_000_000, timezone.utc).replace(microsecond=m % 1_000_000).isoformat()
        for m in request["micros"]
    ]


if __name__ == "__main__":
    command, state_dir = sys.argv[1], Path(sys.argv[2])
    request = json.load(sys.stdin)
    answer = {"write": write, "read": read, "isoformat": isoformat}[command](state_dir, request)
    json.dump(answer, sys.stdout)
