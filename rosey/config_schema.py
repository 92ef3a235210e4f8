"""The shape of ``config.json`` with its defaults (documented key by key in docs/CONFIG.md).

Pure data: validation beyond types lives in ``rosey.config``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec


class _Section(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    pass


class LLM(_Section):
    """The original product's ``llm`` section; field names are kept as they were."""

    enabled: bool = True
    provider: Literal["openai", "ollama"] = "ollama"
    model: str = "llama3.2:3b"
    ollama_host: str = "http://localhost:11434"
    openai_api_key: str = ""
    system_prompt: str = ""
    system_prompt_file: str = ""
    llm_triggers: list[str] = []
    llm_cooldown: float = 10.0
    max_history_messages: int = 10
    response_timeout: float = 30.0
    # Stream answers from the model and post them a sentence at a time; a provider's
    # ``providers.<name>.stream`` overrides it.
    stream: bool = True
    # Seconds a streamed call may take to its first token before it is retried or failed
    # over (0: only response_timeout bounds it).
    first_token_timeout: float = 0.0
    fallback_response: str = "Sorry, I'm having trouble thinking right now."


# CyTube's chat length limit: its default and the range its max-chat-message-length takes
# (what conn.message_length accepts, and what conn believes of a channel page).
MESSAGE_LENGTH_DEFAULT = 320
MESSAGE_LENGTH_MIN, MESSAGE_LENGTH_MAX = 40, 1000


class Conn(_Section):
    channel_password: str = ""
    message_length: int = 0  # 0: the channel page's chat maxlength, else the default
    max_parts: int = 3
    post_ttl: float = 120.0
    connect_timeout: float = 10.0
    reconnect_min: float = 1.0
    reconnect_max: float = 60.0
    echo_timeout: float = 10.0
    log_frames: bool = False
    keepalive_afk: bool = False
    kick_backoff: float = 15.0


class Limits(_Section):
    global_cooldown: float = 0.0
    user_burst: int = 0
    user_per_hour: float = 0.0
    global_burst: int = 0
    global_per_hour: float = 0.0
    daily_quota: int = 0
    timezone: str = "UTC"
    exempt_rank: float = 2.0
    notify_refused: bool = False


class Router(_Section):
    bot_name_trigger: bool = True
    command_prefix: str = "!"
    command_rank: float = 2.0
    command_ranks: dict[str, float] = {}  # per-command minimum rank, overriding the table
    stats_interval: float = 60.0  # seconds between user-count samples (0: none)
    ignore_users: list[str] = []
    queue_max: int = 64
    history_chars: int = 6000
    max_reply_chars: int = 900
    channel_context: int = 0
    reset_on_leave: bool = False
    persist_guest_history: bool = False
    retention_days: float = 90.0
    personas: dict[str, str] = {}
    blocklist: list[str] = []
    blocklist_reply: str = "I'd rather not answer that."
    limits: Limits = msgspec.field(default_factory=Limits)


class Callers(_Section):
    # One caller with 8 slots by default: a caller is an async process waiting on HTTP, so
    # one holds as many concurrent calls as two of 4 slots did, at ~50 MiB less (the whole
    # default deployment then fits the 180 MiB target; bench/memory.py).  A crash loses
    # nothing (the router requeues), and `rosey scale N` adds members when the CPU work
    # of a busy provider SDK needs a second core.
    count: int = 1
    max: int = 8
    slots: int = 8
    heartbeat_interval: float = 1.0
    liveness: float = 3.0
    max_attempts: int = 3


class Endpoint(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """One model host of a provider (``providers.<p>.endpoints[i]``), as written and as
    resolved by ``rosey.config.provider_endpoints`` (which fills ``name`` in)."""

    name: str = ""  # [a-z0-9_-]; "" in the file: derived from the URL's host and port
    url: str  # http(s); for openai the base URL (…/v1)
    capacity: int  # calls it may run at once, shared by the whole caller pool


class OpenAIProvider(_Section):
    base_url: str = ""  # legacy single endpoint; endpoints replaces it
    endpoints: list[Endpoint] = []
    organization: str = ""
    max_tokens: int = 300
    temperature: float = 0.7
    stream: bool | None = None  # None: llm.stream


class OllamaProvider(_Section):
    endpoints: list[Endpoint] = []  # [] : llm.ollama_host (or OLLAMA_HOST) is the only one
    headers: dict[str, str] = {}
    keep_alive: str = "5m"
    temperature: float = 0.7
    num_ctx: int = 0
    max_tokens: int = 300
    stream: bool | None = None  # None: llm.stream


class Fallback(_Section):
    """One entry of ``providers.fallbacks``: tried, in order, after ``llm.provider``/``model``."""

    provider: Literal["openai", "ollama"]
    model: str
    timeout: float = 0.0  # cap per call on this entry; 0: share of the deadline (policy.py)


class Providers(_Section):
    openai: OpenAIProvider = msgspec.field(default_factory=OpenAIProvider)
    ollama: OllamaProvider = msgspec.field(default_factory=OllamaProvider)
    fallbacks: list[Fallback] = []
    primary_timeout: float = 0.0
    breaker_failures: int = 5
    breaker_cooloff: float = 30.0


class Budget(_Section):
    daily_usd: float = 0.0
    monthly_usd: float = 0.0
    action: Literal["fallback", "switch", "silent"] = "fallback"
    # with action "switch": the (cheaper or local) model used once the budget is spent
    switch_provider: Literal["openai", "ollama"] = "ollama"
    switch_model: str = ""
    # USD per 1M tokens, [input, output]; a model not listed costs 0 (Ollama by default)
    prices: dict[str, tuple[Annotated[float, msgspec.Meta(ge=0)],
                            Annotated[float, msgspec.Meta(ge=0)]]] = {}


class Metrics(_Section):
    enabled: bool = True
    host: str = "127.0.0.1"
    conn_port: int = 9461
    router_port: int = 9462
    caller_base_port: int = 9470
    events_port: int = 9469


class Paths(_Section):
    run_dir: str = "run"
    data_dir: str = "data"
    database: str = "rosey.db"


class Log(_Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"


class ChannelEntry(_Section):
    """One entry of ``channels``: the channel's name and partial copies of the sections it
    overrides (any subset of the keys of ``conn``, ``llm``, ``router``; rosey.config
    checks them against those sections and deep-merges them over the top level)."""

    channel: str
    conn: dict[str, Any] = {}
    llm: dict[str, Any] = {}
    router: dict[str, Any] = {}


class Config(_Section):
    domain: str = "https://cytu.be"
    channel: str = ""  # one channel; with ``channels`` it is set to the first one's name
    channels: list[ChannelEntry] = []
    user: list[str] = []
    llm: LLM = msgspec.field(default_factory=LLM)
    conn: Conn = msgspec.field(default_factory=Conn)
    router: Router = msgspec.field(default_factory=Router)
    callers: Callers = msgspec.field(default_factory=Callers)
    providers: Providers = msgspec.field(default_factory=Providers)
    budget: Budget = msgspec.field(default_factory=Budget)
    metrics: Metrics = msgspec.field(default_factory=Metrics)
    paths: Paths = msgspec.field(default_factory=Paths)
    log: Log = msgspec.field(default_factory=Log)

    @property
    def bot_name(self) -> str:
        return self.user[0]

    @property
    def password(self) -> str:
        return self.user[1] if len(self.user) > 1 else ""
