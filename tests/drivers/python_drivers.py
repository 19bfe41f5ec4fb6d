"""psycopg 3, asyncpg and SQLAlchemy against a Strata server, as applications use them.

Usage: python3 python_drivers.py PORT. Exits non-zero on the first
difference from what PostgreSQL 15 returns for the same calls.
"""
import asyncio
import datetime
import decimal
import sys

import asyncpg
import psycopg
import sqlalchemy
from psycopg.types import TypeInfo
from psycopg.types.json import Jsonb
from sqlalchemy import orm

PORT = int(sys.argv[1])
NOON = datetime.datetime(2026, 11, 20, 12, 0, tzinfo=datetime.timezone.utc)
D = decimal.Decimal


def check(label, got, want):
    if got != want:
        sys.exit(f"{label}: got {got!r}, want {want!r}")
    print(f"ok {label}")


def with_psycopg():
    with psycopg.connect(host="127.0.0.1", port=PORT, user="strata", dbname="strata", autocommit=True) as conn:
        cur = conn.cursor()
        cur.execute("CREATE TABLE pg3 (id BIGINT PRIMARY KEY, owner TEXT NOT NULL, bal NUMERIC(12,2), at TIMESTAMPTZ, tags JSONB)")
        cur.execute("INSERT INTO pg3 VALUES (%s, %s, %s, %s, %s)", (1, "ann", D("10.50"), NOON, Jsonb({"b": [1], "a": None})))
        cur.executemany("INSERT INTO pg3 (id, owner, bal) VALUES (%s, %s, %s)", [(i, f"u{i}", D(i)) for i in range(2, 10)])
        # A parameter is of the type psycopg gives it, as in PostgreSQL: a
        # NUMERIC beside an integer literal is no integer, and the same text
        # takes other types on the next Parse.
        check("psycopg numeric parameter beside an integer", cur.execute("SELECT %s * 3 = 1.5, %s + 1", (D("0.5"), 1.5)).fetchone(), (True, 2.5))
        check("psycopg types per Parse", [cur.execute("SELECT %s", (v,)).fetchone()[0] for v in ("a", 1.5, 7)], ["a", 1.5, 7])
        row = cur.execute("SELECT id, owner, bal, at, tags FROM pg3 WHERE id = %s", (1,)).fetchone()
        check("psycopg text row", row, (1, "ann", D("10.50"), NOON, {"a": None, "b": [1]}))
        row = conn.cursor(binary=True).execute("SELECT id, owner, bal, at, tags, 1::int AS one FROM pg3 WHERE id = %s", (1,)).fetchone()
        check("psycopg binary row", row, (1, "ann", D("10.50"), NOON, {"a": None, "b": [1]}, 1))
        # Prepared after a few runs; psycopg sends DEALLOCATE ALL on rollback.
        names = [cur.execute("SELECT owner FROM pg3 WHERE id = %s", (i,), prepare=True).fetchone()[0] for i in (2, 3, 4)]
        check("psycopg prepared", names, ["u2", "u3", "u4"])
        with conn.transaction():
            cur.execute("UPDATE pg3 SET bal = 0 WHERE id = 5")
            try:
                with conn.transaction():
                    cur.execute("UPDATE pg3 SET bal = -1 WHERE id = 6 AND 1 / 0 = 1")
            except psycopg.errors.DivisionByZero:
                pass
        check("psycopg nested rollback", cur.execute("SELECT bal FROM pg3 WHERE id IN (5, 6) ORDER BY id").fetchall(), [(D("0.00"),), (D("6.00"),)])
        with cur.copy("COPY pg3 (id, owner, bal) FROM STDIN") as copy:
            for i in range(100, 105):
                copy.write_row((i, f"c{i}", D("2.5")))
        with cur.copy("COPY (SELECT id, owner FROM pg3 WHERE id >= 100 ORDER BY id LIMIT 2) TO STDOUT") as copy:
            check("psycopg copy out", list(copy.rows()), [("100", "c100"), ("101", "c101")])
        check("psycopg exponent numeric", cur.execute("SELECT %s::numeric(12,8)", (D("1E-7"),)).fetchone(), (D("1.0E-7"),))
        # A changed TimeZone is reported to the client (psycopg then gives
        # times in it), and a time without seconds is read in it.
        cur.execute("SET TIME ZONE 'Europe/Berlin'")
        check("psycopg TimeZone reported", conn.info.parameter_status("TimeZone"), "Europe/Berlin")
        at = cur.execute("SELECT %s::timestamptz", ("2026-11-20 13:00",)).fetchone()[0]
        check("psycopg time without seconds in the zone", (at, at.tzinfo.key), (NOON, "Europe/Berlin"))
        cur.execute("SET TIME ZONE DEFAULT")
        # PostgreSQL reports its configured zone here (Etc/UTC on Debian).
        check("psycopg TimeZone reset", conn.info.parameter_status("TimeZone"), "UTC")
        # A SET undone by ROLLBACK, and a SET LOCAL ended by COMMIT, are
        # reported undone; the failed SELECT fails its block.
        try:
            with conn.transaction():
                cur.execute("SET TIME ZONE 'Asia/Tokyo'")
                check("psycopg TimeZone in a block", conn.info.parameter_status("TimeZone"), "Asia/Tokyo")
                cur.execute("SELECT 1 / 0")
        except psycopg.errors.DivisionByZero:
            pass
        check("psycopg TimeZone after ROLLBACK", conn.info.parameter_status("TimeZone"), "UTC")
        with conn.transaction():
            cur.execute("SET LOCAL TIME ZONE 'Asia/Tokyo'")
        check("psycopg TimeZone after SET LOCAL", conn.info.parameter_status("TimeZone"), "UTC")
        # One string that opens a block and fails in its last rows leaves the
        # block failed, and the client is told so (psycopg reads the status).
        try:
            cur.execute("BEGIN; SELECT 1 / 0")
        except psycopg.errors.DivisionByZero:
            pass
        check("psycopg status after BEGIN; SELECT 1/0", conn.info.transaction_status, psycopg.pq.TransactionStatus.INERROR)
        cur.execute("ROLLBACK")
        check("psycopg status after ROLLBACK", conn.info.transaction_status, psycopg.pq.TransactionStatus.IDLE)
        # Several statements in one string commit together or not at all.
        try:
            cur.execute("INSERT INTO pg3 (id, owner) VALUES (300, 'x'); SELECT 1 / 0")
        except psycopg.errors.DivisionByZero:
            pass
        check("psycopg string undone whole", cur.execute("SELECT count(*) FROM pg3 WHERE id = 300").fetchone(), (0,))
        # A pipeline's statements up to its Sync commit together or not at
        # all; a result asked for inside it is sent on a Flush.
        try:
            with conn.pipeline():
                cur.execute("INSERT INTO pg3 (id, owner) VALUES (%s, %s)", (310, "p"))
                cur.execute("INSERT INTO pg3 (id, owner) VALUES (%s, %s)", (311, "p"))
                cur.execute("INSERT INTO pg3 (id, owner) VALUES (%s, %s)", (310, "p"))
        except psycopg.errors.UniqueViolation:
            pass
        check("psycopg pipeline undone whole", cur.execute("SELECT count(*) FROM pg3 WHERE id >= 310 AND id < 320").fetchone(), (0,))
        with conn.pipeline():
            row = cur.execute("INSERT INTO pg3 (id, owner) VALUES (%s, %s) RETURNING id * 2", (312, "p")).fetchone()
            cur.execute("INSERT INTO pg3 (id, owner) VALUES (%s, %s)", (313, "p"))
        check("psycopg pipeline RETURNING", row, (624,))
        check("psycopg pipeline committed", cur.execute("SELECT count(*) FROM pg3 WHERE id >= 310 AND id < 320").fetchone(), (2,))
        try:
            cur.executemany("INSERT INTO pg3 (id, owner) VALUES (%s, %s)", [(320, "m"), (321, "m"), (320, "m")])
        except psycopg.errors.UniqueViolation:
            pass
        check("psycopg executemany undone whole", cur.execute("SELECT count(*) FROM pg3 WHERE id >= 320").fetchone(), (0,))
        # An error in a statement's Parse (an unknown column) fails the block.
        cur.execute("BEGIN")
        try:
            cur.execute("SELECT nosuch FROM pg3 WHERE id = %s", (1,))
        except psycopg.errors.UndefinedColumn:
            pass
        try:
            cur.execute("INSERT INTO pg3 (id, owner) VALUES (%s, %s)", (400, "p"))
            after = "inserted"
        except psycopg.errors.InFailedSqlTransaction:
            after = "refused"
        cur.execute("ROLLBACK")
        check("psycopg failed Parse fails the block", after, "refused")
        # The status after ROLLBACK TO ends a failure, and after a COMMIT that
        # failed, is the session's (pgwire's own bookkeeping said failed).
        try:
            cur.execute("BEGIN; SAVEPOINT s; SELECT 1 / 0")
        except psycopg.errors.DivisionByZero:
            pass
        cur.execute("ROLLBACK TO s")
        check("psycopg status after ROLLBACK TO", conn.info.transaction_status, psycopg.pq.TransactionStatus.INTRANS)
        cur.execute("ROLLBACK")
        # A string of comments only is an empty query, as in PostgreSQL.
        check("psycopg comment-only query", cur.execute("-- nothing to run").pgresult.status, psycopg.pq.ExecStatus.EMPTY_QUERY)
        # A parameter only in RETURNING, as a function's argument, still plans.
        row = cur.execute("UPDATE pg3 SET bal = bal WHERE id = %s RETURNING round(bal, %s)", (2, 0)).fetchone()
        check("psycopg RETURNING round(bal, %s)", row, (D("2"),))
        # A parameter in RETURNING alone.
        row = cur.execute("INSERT INTO pg3 (id, owner) VALUES (%s, %s) RETURNING id + %s, owner || %s", (200, "r", 5, "!")).fetchone()
        check("psycopg RETURNING parameters", row, (205, "r!"))
        check("psycopg exists", cur.execute("SELECT EXISTS (SELECT 1 FROM pg3 WHERE id = %s)", (1,)).fetchone(), (True,))
        # avg of integers is NUMERIC; Python ints and floats compare with it.
        for binary in (False, True):
            row = conn.cursor(binary=binary).execute(
                "SELECT avg(id), avg(id) > %s, avg(id) * %s FROM pg3 WHERE id < 4", (1, 1.5)).fetchone()
            check(f"psycopg avg of integers (binary {binary})", row, (D("2.0000000000000000"), True, D("3.00000000000000000")))
            # A parameter beside a NUMERIC(12,2) column is not rounded to its scale.
            cur = conn.cursor(binary=binary)
            check(f"psycopg numeric parameter keeps its digits (binary {binary})",
                  cur.execute("SELECT bal * %s, bal > %s FROM pg3 WHERE id = 2", (0.125, 1.995)).fetchone(), (D("0.25"), True))


async def with_asyncpg():
    conn = await asyncpg.connect(host="127.0.0.1", port=PORT, user="strata", database="strata")
    # From the startup parameters, which pgwire fills with its own version.
    check("server version", (conn.get_server_version().major, conn.get_settings().DateStyle), (15, "ISO, MDY"))
    await conn.execute("CREATE TABLE apg (id BIGINT PRIMARY KEY, name TEXT, amt NUMERIC(38,1), at TIMESTAMPTZ, d DATE, j JSONB, b BYTEA, iv INTERVAL)")
    big = D("12345678901234567890123456789.5")
    await conn.executemany(
        "INSERT INTO apg VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        [(1, "n1", big, NOON, datetime.date(1960, 2, 29), '{"k": 1}', b"\x00\xff", datetime.timedelta(days=1, microseconds=5))],
    )
    # executemany is atomic: a failing row leaves the others out too.
    try:
        await conn.executemany("INSERT INTO apg (id, name) VALUES ($1, $2)", [(50, "a"), (51, "b"), (50, "c")])
    except asyncpg.exceptions.UniqueViolationError:
        pass
    check("asyncpg executemany undone whole", await conn.fetchval("SELECT count(*) FROM apg WHERE id >= 50"), 0)
    copied = await conn.copy_records_to_table(
        "apg", records=[(2, "n2", -big, NOON, datetime.date(2000, 1, 1), '{"k": 2}', b"x", datetime.timedelta(0)), (3, None, None, None, None, None, None, None)]
    )
    check("asyncpg binary copy", copied, "COPY 2")
    rows = await conn.fetch("SELECT id, name, amt, at, d, j, b, iv FROM apg ORDER BY id")
    check("asyncpg rows", [tuple(r) for r in rows], [
        (1, "n1", big, NOON, datetime.date(1960, 2, 29), '{"k": 1}', b"\x00\xff", datetime.timedelta(days=1, microseconds=5)),
        (2, "n2", -big, NOON, datetime.date(2000, 1, 1), '{"k": 2}', b"x", datetime.timedelta(0)),
        (3, None, None, None, None, None, None, None),
    ])
    check("asyncpg numeric parameter", await conn.fetchval("SELECT $1::numeric(38,0)", D("9" * 38)), D("9" * 38))
    async with conn.transaction():
        seen = [r["id"] async for r in conn.cursor("SELECT id FROM apg ORDER BY id", prefetch=2)]
    check("asyncpg cursor", seen, [1, 2, 3])
    check("asyncpg jsonb operator", await conn.fetchval("SELECT j->>'k' FROM apg WHERE j @> $1", '{"k": 2}'), "2")
    # Parameters used only in a write's RETURNING are described with the
    # types that list gives them (asyncpg encodes by them).
    for sql, args, types, want in [
        ("UPDATE apg SET name = name WHERE id = $1 RETURNING id + $2, name || $3", (1, 5, "!"), ["int8", "int8", "text"], (6, "n1!")),
        ("INSERT INTO apg (id) VALUES ($1) RETURNING id * $2", (9, 3), ["int8", "int8"], (27,)),
        ("DELETE FROM apg WHERE id = $1 RETURNING $2::text", (9, "gone"), ["int8", "text"], ("gone",)),
    ]:
        statement = await conn.prepare(sql)
        got = ([t.name for t in statement.get_parameters()], tuple(await statement.fetchrow(*args)))
        check(f"asyncpg RETURNING parameters: {sql}", got, (types, want))
    # The RETURNING columns are typed with the parameters' types (an INT
    # parameter plus 1 is an INT; asyncpg reads by the described type).
    await conn.execute("CREATE TABLE apr (k INT PRIMARY KEY, v INT)")
    for sql, args, want in [
        ("INSERT INTO apr VALUES ($1, $2) RETURNING $2 + 1, $1", (1, 5), ([("int4", 6), ("int4", 1)])),
        ("UPDATE apr SET v = 2 WHERE k = $1 RETURNING -$1, v * $1", (1,), ([("int4", -1), ("int4", 2)])),
    ]:
        statement = await conn.prepare(sql)
        row = await statement.fetchrow(*args)
        got = [(a.type.name, value) for a, value in zip(statement.get_attributes(), row)]
        check(f"asyncpg RETURNING types: {sql}", got, want)
    # Arrays: asyncpg has its own codecs for few array types and looks the
    # others up in pg_type (its own catalog query, `$1::oid[]` included).
    async with conn.transaction():
        # Its first lookup turns JIT off (`set_config('jit', …)`), in a block too.
        check("asyncpg array lookup in a transaction", await conn.fetchval("SELECT $1::int[]", [1, 2]), [1, 2])
    await conn.execute("CREATE TABLE apa (id BIGINT PRIMARY KEY, ints INT[], fl DOUBLE PRECISION[], at TIMESTAMPTZ[])")
    await conn.executemany("INSERT INTO apa VALUES ($1, $2, $3, $4)", [(1, [1, None, 3], [0.5], [NOON]), (2, [], None, [])])
    check("asyncpg array columns", [tuple(r) for r in await conn.fetch("SELECT * FROM apa ORDER BY id")],
          [(1, [1, None, 3], [0.5], [NOON]), (2, [], None, [])])
    check("asyncpg = ANY($1::bigint[])", await conn.fetch("SELECT id FROM apa WHERE id = ANY($1::bigint[]) ORDER BY id", [2, 7]), [(2,)])
    statement = await conn.prepare("SELECT id FROM apa WHERE id = ANY($1) AND ints = $2")
    check("asyncpg = ANY($1) typed by its column", [t.name for t in statement.get_parameters()], ["int8[]", "int4[]"])
    check("asyncpg = ANY($1) rows", await statement.fetch([1, 2], [1, None, 3]), [(1,)])
    check("asyncpg int[] parameter and result", await conn.fetchval("SELECT $1::int[] || 4", [1, 2]), [1, 2, 4])
    await conn.close()


def with_sqlalchemy():
    """SQLAlchemy's ORM over psycopg: what it asks on connecting, then a
    model's rows written, changed and read in its transactions."""
    engine = sqlalchemy.create_engine(f"postgresql+psycopg://strata@127.0.0.1:{PORT}/strata")

    class Base(orm.DeclarativeBase):
        pass

    class Account(Base):
        __tablename__ = "sa_accounts"
        id: orm.Mapped[int] = orm.mapped_column(sqlalchemy.BigInteger, primary_key=True)
        owner: orm.Mapped[str] = orm.mapped_column(sqlalchemy.String(40), index=True)
        balance: orm.Mapped[D] = orm.mapped_column(sqlalchemy.Numeric(12, 2))
        opened: orm.Mapped[datetime.datetime] = orm.mapped_column(sqlalchemy.DateTime(timezone=True))

    class Entry(Base):
        __tablename__ = "sa_entries"
        id: orm.Mapped[int] = orm.mapped_column(sqlalchemy.BigInteger, primary_key=True)
        account_id: orm.Mapped[int] = orm.mapped_column(sqlalchemy.ForeignKey("sa_accounts.id"))
        amount: orm.Mapped[D] = orm.mapped_column(sqlalchemy.Numeric(12, 2))
        ref: orm.Mapped[str] = orm.mapped_column(sqlalchemy.String(20), unique=True)

    # In a transaction block, as SQLAlchemy runs DDL.
    Base.metadata.create_all(engine)
    with engine.connect() as connection:
        check("sqlalchemy isolation level", connection.get_isolation_level(), "REPEATABLE READ")
        driver = connection.connection.driver_connection
        check("psycopg TypeInfo", [getattr(TypeInfo.fetch(driver, name), "oid", None) for name in ("hstore", "integer", "text[]")], [None, 23, 1009])
    with orm.Session(engine) as session:
        # BIGSERIAL ids, read back with RETURNING.
        accounts = [Account(owner=f"o{i}", balance=D("10.50"), opened=NOON) for i in (1, 2, 3)]
        session.add_all(accounts)
        session.commit()
        check("sqlalchemy serial ids", [a.id for a in accounts], [1, 2, 3])
        session.get(Account, 2).balance += 1
        session.delete(session.get(Account, 3))
        session.commit()
    with orm.Session(engine) as session:
        rows = [(a.id, a.owner, a.balance, a.opened) for a in session.scalars(sqlalchemy.select(Account).order_by(Account.id))]
        check("sqlalchemy orm rows", rows, [(1, "o1", D("10.50"), NOON), (2, "o2", D("11.50"), NOON)])
        chosen = session.scalars(sqlalchemy.select(Account.id).where(Account.id.in_([2, 9]))).all()
        check("sqlalchemy in_", chosen, [2])
        # Through the index create_all made for owner.
        check("sqlalchemy indexed column", session.scalars(sqlalchemy.select(Account.id).where(Account.owner == "o2")).all(), [2])
    with orm.Session(engine) as session:
        # A foreign key: an account an entry names cannot be deleted.
        session.add(Entry(account_id=1, amount=D("5.00"), ref="e1"))
        session.commit()
        session.delete(session.get(Account, 1))
        try:
            session.commit()
            refused = None
        except sqlalchemy.exc.IntegrityError as error:
            refused = error.orig.sqlstate
        check("sqlalchemy foreign key", refused, "23503")
    with orm.Session(engine) as session:
        # A UNIQUE column: the error names its constraint, as psycopg reads it.
        session.add(Entry(account_id=2, amount=D("1.00"), ref="e1"))
        try:
            session.commit()
            refused = None
        except sqlalchemy.exc.IntegrityError as error:
            refused = (error.orig.sqlstate, error.orig.diag.constraint_name, error.orig.diag.table_name)
        check("sqlalchemy unique", refused, ("23505", "sa_entries_ref_key", "sa_entries"))
    with engine.begin() as connection:
        connection.execute(Account.__table__.insert(), [dict(id=i, owner="b", balance=1, opened=NOON) for i in range(100, 150)])
        changed = connection.execute(Account.__table__.update().where(Account.id >= 140).values(owner="u")).rowcount
    check("sqlalchemy executemany and rowcount", changed, 10)
    names = sqlalchemy.inspect(engine).get_table_names()
    check("sqlalchemy table names", [name in names for name in ("sa_accounts", "sa_entries")], [True, True])
    Base.metadata.drop_all(engine)
    check("sqlalchemy drop_all", "sa_accounts" in sqlalchemy.inspect(engine).get_table_names(), False)
    engine.dispose()


with_psycopg()
asyncio.run(with_asyncpg())
with_sqlalchemy()
