"""Every Redis key template and TTL the project uses, each with the reason it exists.

Keys are namespaced with `pb:` so a shared Redis can host other applications.

Redis Cluster: hash tags
========================
In a Redis Cluster a MULTI/EXEC transaction, a WATCH and a Lua script may only touch keys of one hash slot, and
a key's slot is the hash of its `{hash tag}` when it has one (else of the whole key). Keys that must change
together therefore share a tag; everything else is left untagged so it spreads over the cluster. The same layout
serves a single server (tags are plain characters there), so one code path is tested on both.

| Tag            | Keys sharing it                                                  | Why they must share a slot |
|----------------|------------------------------------------------------------------|----------------------------|
| `{src:NAME}`   | frame, frame_index, frame_known, failed_file, failed_index       | a source file's tables, its date index and its known-at moment are stored in one MULTI (FrameStore.put_dumped); a range of days is read with one MGET; a kept failed file and its index entry are written and dropped in one MULTI |
| `{chat:ID}`    | watchlist, chat_settings, mutes, digest_queue                    | one chat's own state: a supergroup migration writes the new chat's state in one MULTI; the digest queue is read and emptied in one MULTI |
| `{outbox}`     | OUTBOX_DUE, OUTBOX_DEAD, OUTBOX_ITEMS, outbox_item, outbox_batch, outbox_alert | the claim script leases items in the due ZSET; the put scripts check the ZSET and write items (keys, or compact hash entries whose batch record they read); done / reschedule / dead-letter change an item and the ZSET (and the dead list) in one MULTI; items, batch records and alert bodies are read with MGET/HMGET. One queue, on one node: its rate is bounded by Telegram's (30 messages/s), far below one Redis node's |
| `{limiter}`    | LIMITER_NEXT, LIMITER_ANSWERS, LIMITER_IN_FLIGHT, LIMITER_429S, limiter_chat, DELIVERY_LIVE | the delivery limiter's scripts (alerts/store/ratelimit.py) read and write the global spacing, the window of answers, the sends in flight, the recent 429s and one chat's gap in one call, with Redis's own clock. Like the outbox, one node: at most ~30 sends a second (1000 with paid broadcast), two short scripts each |
| `{upd:P}`      | update_stream, update_seen, update_lease (of partition P)        | the web's script checks an update id and appends the update to its partition's stream atomically; each partition has its own tag so the K streams spread over the cluster's nodes |

Untagged and why that is safe: `watchers` (a code's reverse index) and the global sets CHATS and
MARKET_SUBSCRIBERS are indexes of the per-chat state, written in their own commands after it (see
alerts/store/subscriptions.py: each is idempotent and re-written by the next /watch, /unwatch or /settings);
`routed` marks are one packed string per alert (its own `{alert:FP}` tag), appended by single-key commands; `alerts_by_day` is written under WATCH
alone and `alerts_by_code` indexes it afterwards (a re-record re-adds it); every other key is read and written by
single-key commands (leases, counters, markers, caches, the update workers' registry UPDATE_WORKERS).

Keys written by releases before the tags existed are renamed once by alerts/store/migrate.py (`positioning-bot
migrate-keys`, also run by the leader at start-up).
"""

from __future__ import annotations

from datetime import date, timedelta

PREFIX = "pb:"


def source_tag(source: str) -> str:
    """Hash tag of a source's frames and kept files (one slot per source: see the table above)."""
    return "{src:" + source + "}"


def chat_tag(chat_id: int) -> str:
    """Hash tag of one chat's own state (one slot per chat: see the table above)."""
    return "{chat:" + str(chat_id) + "}"


OUTBOX_TAG = "{outbox}"  # hash tag of the outbox queue, its items and the alert bodies they refer to

# Parsed canonical table of one source file: gzip'd JSON (pandas "split" orient) keyed by the file's own date.
# Kept ~2 years so rules always have >= 250 trading days of history without refetching.
FRAME_TTL_SECONDS = 800 * 24 * 3600


def frame(source: str, table: str, day: date) -> str:
    """Key of one stored table of a source for a date."""
    return f"{PREFIX}frame:{source_tag(source)}:{table}:{day.isoformat()}"


def frame_index(source: str, table: str) -> str:
    """ZSET of stored dates (member ISO date, score = proleptic ordinal) so ranges load without SCAN."""
    return f"{PREFIX}frames:{source_tag(source)}:{table}"


def frame_known(source: str) -> str:
    """HASH ISO date -> ISO moment the source's file for that date became known (its publication moment).

    Written once per date (HSETNX): a revised file keeps its first moment. No TTL, like the index it sits beside;
    dates stored before it existed fall back to the schedule's due moment. History filters rows by it.
    """
    return f"{PREFIX}frames:{source_tag(source)}:known"


# Conditional-GET validators and content hash per URL: lets the next fetch send If-None-Match /
# If-Modified-Since and lets a re-fetch of identical bytes be recognised. Same lifetime as frames.
FETCH_STATE_TTL_SECONDS = FRAME_TTL_SECONDS


def fetch_state(url: str) -> str:
    """HASH of etag / last_modified / sha256 / fetched_at for one URL."""
    return f"{PREFIX}fetch:{url}"


def source_status(source: str) -> str:
    """HASH of the last successful fetch (date, rows, at) and last error (message, at) of a source; no TTL."""
    return f"{PREFIX}status:{source}"


# ---- chats, watchlists and settings ---------------------------------------------------------------------------
# No TTLs: a user's watchlist and settings live until they change them (or block the bot: kept, marked inactive).

CHATS = f"{PREFIX}chats"  # SET of every chat id that ever talked to the bot (stats, broadcast)
MARKET_SUBSCRIBERS = f"{PREFIX}market:chats"  # SET of chats that opted in to market-wide alerts
WATCHLIST_CAP = 200  # codes per chat: keeps fan-out and /list bounded


def watchlist(chat_id: int) -> str:
    """SET of codes a chat watches."""
    return f"{PREFIX}wl:{chat_tag(chat_id)}"


def watchers(code: str) -> str:
    """SET of chats watching a code (reverse index for fan-out), written right after the watchlist (not in its
    MULTI: a code's set and a chat's list live in different slots of a cluster)."""
    return f"{PREFIX}wl:by_code:{code}"


def chat_settings(chat_id: int) -> str:
    """HASH of a chat's settings: lang, quiet, digest, active, type, rules_off, thresholds (JSON), thread."""
    return f"{PREFIX}chat:{chat_tag(chat_id)}"


# Field of chat_settings: the forum topic (message_thread_id) a supergroup's messages go to, set by /here in a
# topic and cleared when Telegram answers that the topic is gone. Absent: the chat itself (a forum's General topic).
THREAD_FIELD = "thread"


def mutes(chat_id: int) -> str:
    """ZSET of muted targets (a code or a rule id), score = expiry epoch seconds; expired members are ignored."""
    return f"{PREFIX}mutes:{chat_tag(chat_id)}"


# Change log for routing's in-process cache (alerts/store/audience.py): every SubscriptionStore write that routing
# reads (settings, mutes, watch/unwatch, market opt-in, migrate) bumps SUBS_VERSION and records the chat (and any code
# whose watcher set changed) with the new version, so a routing pass re-reads only what changed since its last look.
# One hash tag {subs}: the bump is one script over the three keys, which Redis Cluster needs in one slot.
# No TTL; each log holds at most one member per chat (per code), so they are bounded like the chats themselves.
SUBS_VERSION = f"{PREFIX}{{subs}}:version"  # STRING counter
SUBS_CHANGED_CHATS = f"{PREFIX}{{subs}}:changed:chats"  # ZSET chat id -> version of its last change
SUBS_CHANGED_CODES = f"{PREFIX}{{subs}}:changed:codes"  # ZSET code (or MARKET) -> version of its last change
# STRING random token naming this dataset, written once (SET NX) when missing: a Redis that lost its data (or a
# test's flush) gets a new one, so a cache built on the old data is never used for it.
SUBS_EPOCH = f"{PREFIX}{{subs}}:epoch"


def command_rate(chat_id: int, minute: int) -> str:
    """Counter of commands a chat sent in one minute (per-chat command rate limit)."""
    return f"{PREFIX}cmdrate:{chat_id}:{minute}"


COMMAND_RATE_TTL_SECONDS = 120


# ---- routing, outbox and delivery -----------------------------------------------------------------------------
# Routing marks (fingerprint × chat) once, so re-running a cycle or a revised file never routes an alert twice.
# 60 days outlives any revision or catch-up window. The marks of an alert expire by day: at the end of the Hong Kong
# day ROUTED_DAYS after its trade date; an alert older than that is not routed at all (alerts/routing.py), so an
# expired mark can never let an alert through twice.
ROUTED_DAYS = 60
ROUTED_TTL_SECONDS = ROUTED_DAYS * 24 * 3600


def routed_last_day(trade_date: date) -> date:
    """The last (Hong Kong) day an alert of `trade_date` may be routed, and its marks kept."""
    return trade_date + timedelta(days=ROUTED_DAYS)


def routed(fingerprint: str) -> str:
    """STRING of the chats an alert was routed to, as packed little-endian int64 chat ids (APPENDed by each pass).

    The idempotency key fingerprint × chat is membership in it. 8 bytes a chat: at 100k subscribers a day routes
    about a million pairs, ≈ 8 MB a day and ≈ 0.5 GB over 60 days; a SET per alert (a hash table past 512 members)
    took 52 MB a day (≈ 3 GB), a key per pair more still. Hash tag {alert:FP}: the alert's keys share a slot.
    """
    return f"{PREFIX}routed:{{alert:{fingerprint}}}"


def routed_legacy(fingerprint: str) -> str:
    """SET of chats an alert was routed to, as written before the packed marks: read (never written) until the
    last of them expire, ROUTED_DAYS after the upgrade, so an alert routed before it is not routed again."""
    return f"{PREFIX}routed:{fingerprint}"


OUTBOX_DUE = f"{PREFIX}{OUTBOX_TAG}:due"  # ZSET item id -> epoch seconds when it may be sent (or re-claimed)
OUTBOX_DEAD = f"{PREFIX}{OUTBOX_TAG}:dead"  # LIST of JSON items Telegram refused for good (admins are told)
# HASH pass id -> JSON of one routing pass about to be written (its items, digest entries and marks). Written first,
# applied, then removed: a pass cut short is applied whole by the next pass before it computes anything, so a re-run
# that groups a chat's alerts differently (a later clock, more files known) never re-sends an alert of the cut pass.
# One key, single-key commands: cluster-safe. A day is ample: the next pass (every few seconds) applies it.
ROUTING_JOURNAL = f"{PREFIX}routing:journal"
ROUTING_JOURNAL_TTL_SECONDS = 24 * 3600
OUTBOX_ITEM_TTL_SECONDS = 14 * 24 * 3600  # an undeliverable item is dropped after two weeks
# Sent markers outlive items so a restarted worker that re-claims an item skips parts already accepted.
SENT_TTL_SECONDS = 30 * 24 * 3600
CLAIM_SECONDS = 60  # an item claimed by a worker that died becomes due again after this long


def outbox_item(item_id: str) -> str:
    """STRING JSON of one outbox item (chat, alerts or text, silent flag, attempts)."""
    return f"{PREFIX}{OUTBOX_TAG}:item:{item_id}"


# HASH item id -> compact alerts item of a fan-out pass, "<batch> <chat> <silent 0|1> <indices>" (indices into the
# batch record's fingerprints). One hash, not a key per item: a pass at 100k subscribers writes ~90k items, and a key
# (with its expiry entry) per item cost seconds of Redis time and ~3x the memory. Fields carry no TTL: an item lives as
# long as its batch record (below); one whose record expired is dropped when claimed, and done / dead-letter /
# reschedule / move_chat remove the field (the last two move the item to its own outbox_item key).
OUTBOX_ITEMS = f"{PREFIX}{OUTBOX_TAG}:items"


def outbox_batch(batch_id: str) -> str:
    """STRING JSON of one fan-out pass's record: `refs` (its alert fingerprints, which compact items index),
    `kind` and `created_at`. Id = digest of the record. TTL OUTBOX_ITEM_TTL_SECONDS: its items' lifetime."""
    return f"{PREFIX}{OUTBOX_TAG}:batch:{batch_id}"


def outbox_alert(fingerprint: str) -> str:
    """STRING JSON of one alert that outbox items and digest queues refer to by fingerprint.

    Stored once per alert instead of once per recipient: a popular stock's alert reaches tens of thousands of chats,
    and copying it into every item made the outbox hundreds of MB at 100k subscribers.
    """
    return f"{PREFIX}{OUTBOX_TAG}:alert:{fingerprint}"


# Longer than any item or digest queue that can refer to an alert: the queue waits up to its TTL, then the item lives
# up to its own; refreshed whenever the alert is routed again.
OUTBOX_ALERT_TTL_SECONDS = OUTBOX_ITEM_TTL_SECONDS + 7 * 24 * 3600 + 24 * 3600


def sent_part(item_id: str, part: int) -> str:
    """Marker that part `part` of an item was accepted by Telegram (written right after the send returns)."""
    return f"{PREFIX}outbox:sent:{item_id}:{part}"


# ---- the shared delivery limiter (alerts/store/ratelimit.py) -------------------------------------------------------
# Any number of delivery processes share Telegram's limits: DELIVERY_RATE sends in any 1 s window, 1 s between two
# messages to a chat, 3 s to a group (20 a minute), and a 429's retry_after. Every key self-expires (PX), so a limiter
# nobody uses leaves nothing behind and a process killed mid-send holds nothing for longer than LIMITER_IN_FLIGHT_MS.
LIMITER_TAG = "{limiter}"  # one slot: each limiter script reads and writes several of these keys at once
# STRING whose *remaining TTL* is the time until the next send may go anywhere (spacing, or a global 429 pause).
LIMITER_NEXT = f"{PREFIX}{LIMITER_TAG}:next"
# ZSET send token -> Redis time (ms) Telegram answered it; holds the last window's answers (the window is counted
# from answers, so network jitter cannot put more than the rate into one of Telegram's windows).
LIMITER_ANSWERS = f"{PREFIX}{LIMITER_TAG}:answers"
# ZSET send token -> Redis time (ms) until which a send not yet answered counts in the window. A send lasts at most
# PTB's timeouts (a photo upload's write timeout is 20 s); a process killed mid-send frees its place after this.
LIMITER_IN_FLIGHT = f"{PREFIX}{LIMITER_TAG}:inflight"
LIMITER_IN_FLIGHT_MS = 30_000
# ZSET token -> Redis time (ms) of each 429 in the last LIMITER_429_SPAN_MS: several across processes and chats mean
# Telegram throttles the bot as a whole, and every process pauses.
LIMITER_429S = f"{PREFIX}{LIMITER_TAG}:429s"
LIMITER_429_SPAN_MS = 10_000


# ZSET process name -> Redis time (ms) of its last heartbeat: the `delivery` processes alive now. A `run` whose drain
# job finds one alive leaves the outbox to them (two senders with separate limits would exceed Telegram's).
DELIVERY_LIVE = f"{PREFIX}{LIMITER_TAG}:couriers"
DELIVERY_LIVE_MS = 15_000  # a heartbeat older than this is a dead process (heartbeats every DELIVERY_BEAT_S)
DELIVERY_BEAT_S = 5.0


def limiter_chat(chat_id: int) -> str:
    """STRING whose remaining TTL is the time until the next message to `chat_id` may go (its gap from the last
    answer, a 429's retry_after, or LIMITER_IN_FLIGHT_MS while a send to it is in flight)."""
    return f"{PREFIX}{LIMITER_TAG}:chat:{chat_id}"


def digest_queue(chat_id: int) -> str:
    """LIST of alert fingerprints held for a chat's daily digest (bodies under outbox_alert; older entries are
    whole alert JSON objects, still read)."""
    return f"{PREFIX}digest:{chat_tag(chat_id)}"


DIGEST_TTL_SECONDS = 7 * 24 * 3600


# ---- alert history (for /top, /history, confluence across processes) -------------------------------------------
ALERT_TTL_SECONDS = 400 * 24 * 3600


def alerts_by_day(day: date) -> str:
    """HASH fingerprint -> alert JSON of alerts whose trade date is `day`.

    The JSON's `found_by` says how the alert was found: "live" (a cycle, routed to watchers) or "replay" (a
    backfill's point-in-time replay: history, never routed, and not pushed when a live cycle finds it later).
    """
    return f"{PREFIX}alerts:day:{day.isoformat()}"


def alerts_by_code(code: str) -> str:
    """ZSET fingerprint -> trade-date ordinal, per code (for /history)."""
    return f"{PREFIX}alerts:code:{code}"


# ---- cycles ------------------------------------------------------------------------------------------------------
# The content digest of the last fully processed (fetched, evaluated, routed) file of a source for a date. A cycle
# whose digest matches does nothing; a crash between storing and routing leaves it unset, so the next run (or the
# standby after a failover) finishes the work. Kept as long as frames.
CYCLE_TTL_SECONDS = FRAME_TTL_SECONDS


def cycle_done(source: str, day: date) -> str:
    """STRING digest of the processed content of (source, day)."""
    return f"{PREFIX}cycle:{source}:{day.isoformat()}"


WINDOW_NOTICE_TTL_SECONDS = (
    14 * 24 * 3600
)  # admins are told once per (source, date) that a window passed empty


def window_notice(source: str, day: date) -> str:
    """Marker (SET NX) that the admins were told the file of (source, day) did not come in its windows."""
    return f"{PREFIX}window-notice:{source}:{day.isoformat()}"


# ---- kept failed files (layout drift loses nothing) ------------------------------------------------------------
# Raw bytes of a fetched file that did not parse (a changed layout, a truncated upload), with the evidence (message,
# expected / found headers, layout), so that after a parser upgrade `positioning-bot reparse` can store it and route
# its alerts late instead of never. 30 days covers noticing the notice, fixing the parser and deploying; older files
# are past any alert's use. Bounded in size and number so a source serving something odd for weeks cannot fill Redis:
# a file over FAILED_MAX_BYTES is not kept (logged), and past FAILED_MAX_PER_SOURCE the oldest is dropped.
FAILED_TTL_SECONDS = 30 * 24 * 3600
FAILED_MAX_BYTES = 20 * 1024 * 1024
FAILED_MAX_PER_SOURCE = 100  # about 30 days of a two-file daily source, plus revisions


def failed_file(source: str, day: date, sha256: str) -> str:
    """HASH of one kept file: content (bytes), url, date, kept_at, etag, last_modified, error, error_type, expected,
    found (JSON lists), layout, failed ("1"; "0" for a sibling of a multi-file day that parsed, kept so the day can be
    rebuilt from what was fetched then). Keyed by content hash: a file refetched every poll is kept once."""
    return f"{PREFIX}failed:{source_tag(source)}:{day.isoformat()}:{sha256}"


def failed_index(source: str) -> str:
    """ZSET of a source's kept files (member `<ISO date>:<sha256>`, score = epoch seconds kept): lists them without
    SCAN and finds the oldest to drop; members whose hash expired are pruned when listed."""
    return f"{PREFIX}failed:index:{source_tag(source)}"


# Admins are told once per (source, layout signature) that a layout changed, not once per day or poll: a new layout
# fails every file until the parser is upgraded. As long as the files themselves are kept; a layout still failing
# after that is told again.
DRIFT_NOTICE_TTL_SECONDS = FAILED_TTL_SECONDS


def drift_notice(source: str, signature: str) -> str:
    """Marker (SET NX) that the admins were told about a failing layout of a source."""
    return f"{PREFIX}drift-notice:{source}:{signature}"


# ---- leader lease ------------------------------------------------------------------------------------------------
# Only one `positioning-bot run` process may schedule cycles and poll Telegram (two pollers fight over getUpdates and
# two schedulers double the fetch load). The leader holds this key (value = its owner id) and renews it every ttl/3;
# if it dies the key expires and the hot standby takes over within about one ttl. Defaults to 30 s
# (settings.lease_ttl_seconds): long enough to ride out a Redis blip, short enough that a failover goes unnoticed.
LEADER_LEASE_TTL_SECONDS = 30.0


def leader_lease(name: str = "leader") -> str:
    """STRING owner id of the process holding lease `name`, expiring unless renewed (SET NX PX / compare-and-renew)."""
    return f"{PREFIX}lease:{name}"


# ---- data-loss marker ----------------------------------------------------------------------------------------------
# STRING, no TTL: written by the leader once Redis answers (value = when). After an outage, a Redis that answers
# without it restarted without its data (no persistence, or a lost disk): watchlists, settings, the outbox and the
# dedupe marks since the last save are gone, and the admins are told so, not only that Redis was unreachable.
DATA_MARKER = f"{PREFIX}marker"


# ---- key layout --------------------------------------------------------------------------------------------------
# STRING, no TTL: the key layout this Redis holds, set when alerts/store/migrate.py finished a pass renaming the keys
# of releases before the hash tags. The leader checks it at start-up, so a migrated Redis is not scanned again.
KEY_LAYOUT = f"{PREFIX}layout"
KEY_LAYOUT_VERSION = "2"  # 2: hash tags for Redis Cluster (1, unmarked: the untagged names)


# ---- US ticker map --------------------------------------------------------------------------------------------------
# SEC's company_tickers.json (ticker -> CIK), refreshed weekly; kept a little longer so a failed refresh is harmless.
US_TICKERS = f"{PREFIX}us:tickers"  # HASH ticker -> CIK, replaced whole (DEL + HSET in one MULTI: one key)
US_TICKERS_TTL_SECONDS = 9 * 24 * 3600
US_TICKERS_REFRESH_SECONDS = 7 * 24 * 3600


# ---- charts ---------------------------------------------------------------------------------------------------------
# A chart is drawn once per stock, kind, language and the trading day its data end on (a new file → a new day → a new
# chart), stored as PNG bytes with the file_id Telegram gave the first upload, so later sends are a Redis read and a
# file_id. Two days cover a weekend's re-sends without keeping stale pictures.
CHART_TTL_SECONDS = 2 * 24 * 3600


def chart(code: str, kind: str, lang: str, day: date) -> str:
    """HASH of one chart: `png` (bytes) and `file_id` (Telegram's id of the uploaded photo, once sent)."""
    return f"{PREFIX}chart:{code}:{kind}:{lang}:{day.isoformat()}"


# ---- DION corporation ids ---------------------------------------------------------------------------------------------
# A stock's notice list on DION (hkex-di, NSAllFormList.aspx) is addressed by DION's own id of the corporation (`sid`,
# 00700 -> 6893) and the name DION shows, read from the corporation search page. The id does not change, so it is
# cached rather than searched before every notice list: one request saved per watched code per poll. 30 days lets a
# renamed corporation's new name come in within a month; an entry whose notice list stops parsing is dropped early.
DI_CORP_TTL_SECONDS = 30 * 24 * 3600


def di_corp(code: str) -> str:
    """HASH `sid` / `corp_name` of a stock code on DION, from its corporation search page."""
    return f"{PREFIX}di:corp:{code}"


# ---- fair service (bot/fairness.py) --------------------------------------------------------------------------------
# In groups the command budget is counted per member, so one member's flood does not silence the others (private
# chats and channels keep `command_rate`, one sender each). Commands and button presses share the budget.
def command_rate_member(chat_id: int, user_id: int, minute: int) -> str:
    """Counter of commands and button presses one member sent in a group in one minute (TTL as command_rate)."""
    return f"{PREFIX}cmdrate:{chat_id}:u{user_id}:{minute}"


# Whether a member may change a group's watchlist and settings, as getChatMember said: asked once per 10 minutes,
# not once per command (a promotion or demotion takes effect within that time).
CHAT_ADMIN_TTL_SECONDS = 600


def chat_admin(chat_id: int, user_id: int) -> str:
    """STRING "1" (administrator or owner of group `chat_id`) or "0", expiring after CHAT_ADMIN_TTL_SECONDS."""
    return f"{PREFIX}chatadmin:{chat_id}:{user_id}"


# ---- update stream (web → worker, alerts/store/updates.py) ------------------------------------------------------
# In webhook mode `web` processes append each update to one of K streams (partition = chat id mod K) and `worker`
# processes read them through one consumer group. Each partition has its own hash tag, so the streams spread over a
# cluster and the dedupe marker of an update shares the slot of the stream it goes to (one script does both).
UPDATE_PARTITIONS = (
    16  # default of UPDATE_PARTITIONS: enough for 16 workers; change only with every process stopped
)
UPDATE_GROUP = "workers"  # the consumer group of every partition stream
# Cap per partition stream (XADD MAXLEN ~): entries are acknowledged within seconds and the cap only bounds memory
# should every worker be down; 100k updates per partition is hours of a busy bot's traffic.
UPDATE_STREAM_MAXLEN = 100_000
# Telegram posts an update again when it did not get our 200 (a timeout, a lost connection) and keeps trying for
# up to 24 h; one hour catches the re-posts of any short outage while keeping the markers few (one per update).
UPDATE_SEEN_TTL_SECONDS = 3600
# A worker owns a partition through a lease renewed every ttl / 3 (default of UPDATE_LEASE_SECONDS): a worker that
# dies loses its partitions (and its unacknowledged updates are claimed by another worker) within about this long.
UPDATE_LEASE_TTL_SECONDS = 5.0


def update_tag(partition: int) -> str:
    """Hash tag of one update partition (its stream, its dedupe markers and its lease: see the table above)."""
    return "{upd:" + str(partition) + "}"


def update_stream(partition: int) -> str:
    """STREAM of updates of the chats in `partition` (field `u`: the update's JSON), read by group UPDATE_GROUP."""
    return f"{PREFIX}updates:{update_tag(partition)}"


def update_seen(partition: int, update_id: int) -> str:
    """STRING marker that update `update_id` was queued (SET NX, UPDATE_SEEN_TTL_SECONDS): re-posts are dropped."""
    return f"{PREFIX}updates:{update_tag(partition)}:seen:{update_id}"


def update_lease(partition: int) -> str:
    """STRING owner id of the worker reading `partition` (a lease like leader_lease, UPDATE_LEASE_TTL_SECONDS)."""
    return f"{PREFIX}lease:updates:{update_tag(partition)}"


# STRING, no TTL: the K the streams were laid out with (SET NX by the first web or worker). A process configured with
# another UPDATE_PARTITIONS refuses to start: it would write chats to partitions nobody reads, or read the wrong ones.
UPDATE_LAYOUT = f"{PREFIX}updates:partitions"

# ZSET worker owner id -> epoch ms until which it counts as alive (renewed with its leases); each worker takes a
# fair share ceil(K / live workers) of the partitions. Entries past their time are removed by any worker.
UPDATE_WORKERS = f"{PREFIX}updates:workers"


# STRING, no TTL: sha256 of the webhook URL, secret and update list the `web` processes last set with setWebhook.
# getWebhookInfo tells the URL back but never the secret: without this a changed WEBHOOK_SECRET would not be set.
WEBHOOK_FINGERPRINT = f"{PREFIX}webhook:set"
