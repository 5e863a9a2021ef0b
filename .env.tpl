# Deploy-time variables of pickup's SST app. Copy to `.env.<stage>` (e.g. `.env.production`) or `.env.local`,
# or export them in the shell; `npx sst deploy --stage <stage>` checks them all before synthesizing anything.
# Every variable is optional: the value shown is the default. Units are in the names.
# Secrets are not set here: `npx sst secrets set CLUSTER_BASIC_AUTH_TOKEN <token> --stage <stage>`, and the
# chains' JSON-RPC endpoints for NFT collections: `npx sst secrets set CHAIN_RPC '{"1":"https://…"}' --stage <stage>`
# (`'{}'` for none; README.md, "Deploying to AWS").
# AWS credentials and region come from the usual AWS variables/profile (`--region` overrides, default us-east-1).

# ---------------------------------------------------------------- storage
# Store validated CARs in this existing bucket (same account and region) instead of creating one. It is
# imported, never modified: its versioning, encryption and policies stay its owner's business.
DESTINATION_BUCKET_NAME=
# AWS accounts (12 digits, comma-separated) allowed to subscribe to the "CAR stored" topic: the indexers'.
CAR_STORED_SUBSCRIBER_ACCOUNTS=

# ---------------------------------------------------------------- HTTP API
# Serve the API on this domain, in the Route 53 hosted zone given by id and name (all three, or none).
API_DOMAIN=
API_HOSTED_ZONE_ID=
API_HOSTED_ZONE_NAME=
# Origins allowed by CORS, comma-separated.
API_CORS_ORIGINS=*
# Delegates the Pinning Service API hands out while no worker is live (WORKER_MIN_TASKS=0, or all restarting):
# stable /p2p/ multiaddrs of peers of yours, comma-separated. None: it answers 503 until a worker is up.
PSA_DELEGATES=
# Route throttling: steady requests per second and burst the API accepts; above them clients get 429.
API_THROTTLE_RATE_PER_SECOND=50
API_THROTTLE_BURST=100

# ---------------------------------------------------------------- worker tasks (ECS Fargate)
# Autoscaling bounds, in tasks. Scaling aims at BATCH_SIZE pin jobs (waiting or in flight) per task.
WORKER_MIN_TASKS=1
WORKER_MAX_TASKS=10
# Task size shared by kubo and the sidecar: CPU units (1024 = 1 vCPU: 1024, 2048, 4096, 8192 or 16384) and
# memory in MiB (a size Fargate allows for that CPU).
WORKER_CPU=2048
WORKER_MEMORY_MIB=8192
# x86_64 or arm64 (Graviton, ~20% cheaper; the images are then built for arm64, emulated on x86 machines).
WORKER_CPU_ARCHITECTURE=x86_64
# Disk per task = BATCH_SIZE x this + 10 GiB, within Fargate's 21-200 GiB: kubo keeps every block of the
# running jobs until the sidecar collects garbage between jobs.
WORKER_TYPICAL_CAR_GIB=8
# Availability zones of the worker VPC (1-3).
WORKER_AZS=2
# kubo's connection manager: above HIGH_WATER connections it trims down to LOW_WATER.
KUBO_CONNMGR_LOW_WATER=100
KUBO_CONNMGR_HIGH_WATER=400
# Shortest interval between two `ipfs repo gc` runs of one worker, in ms (GC runs only while it holds no jobs).
KUBO_GC_MIN_INTERVAL_MS=600000

# ---------------------------------------------------------------- worker tuning (core/config.ts)
# Largest CAR pickup stores, in bytes (31 GiB). Also what the validator is sized for: a value the validator
# Lambda cannot check within its budget is refused (stacks/validator-sizing.ts).
MAX_CAR_BYTES=33285996544
# Most distinct blocks (link targets included) of one DAG, for the worker and the validator: it bounds one
# job's memory whatever the DAG's shape (~140/~150 bytes a block); a larger DAG fails at once. At most 16000000.
MAX_DAG_BLOCKS=2000000
# Longest one fetch may take (4 hours) and longest wait for the next byte (2 minutes).
FETCH_TIMEOUT_MS=14400000
FETCH_CHUNK_TIMEOUT_MS=120000
# Pin jobs one worker transfers at once (jobs still searching for their content do not count).
BATCH_SIZE=10
# Pin jobs one worker searches for at once (no block received yet): content nobody serves waits here,
# not in one of the BATCH_SIZE transfer slots. 2500: above a backlog of 2,000 unreachable pins (README,
# Benchmarks); each search costs a place in the worker's read of its running pins once every 12
# PROGRESS_INTERVAL_MS (DynamoDB reads; in between it reads only the marks of content deleted lately).
SEARCH_CONCURRENCY=2500
# Receives from the pin queue one worker keeps in flight (ten messages each): how fast a task takes a backlog.
# Each reserves the search slots it may fill, so a worker never holds a message it cannot start.
RECEIVE_CONCURRENCY=4
# Blocks fetched in parallel within one job.
FETCH_CONCURRENCY=32
# A block unanswered this long (while later ones arrive, or nothing arrives) is asked again; then after twice
# as long, up to 60 s.
FETCH_REASK_MS=10000
# Each dial of a request's origins gives up after this.
DIAL_TIMEOUT_MS=10000
# S3 multipart part size in bytes (8 MiB; at least 5 MiB).
UPLOAD_PART_BYTES=8388608
# The pin queue's visibility timeout and the worker's lease, in seconds: one value for both; the worker renews
# it every third of it while it works.
VISIBILITY_TIMEOUT_SECONDS=300
# Retry delays: the first, doubling per receive, capped.
RETRY_BASE_DELAY_SECONDS=30
RETRY_MAX_DELAY_SECONDS=900
# How often a running job records its progress on the pin.
PROGRESS_INTERVAL_MS=5000
# While the worker's IPFS node (kubo) does not answer, how often the worker asks again; it takes no job until
# it answers.
IPFS_RETRY_INTERVAL_MS=5000
# On SIGTERM, how long running jobs may finish before they are released (at most 90000: Fargate kills the
# container 120 s after SIGTERM).
SHUTDOWN_GRACE_MS=30000
# Attempts per pin: the pin queue's maxReceiveCount (receives before a job is dead-lettered) and the
# validator's bound on retries of invalid CARs, one value for both.
MAX_ATTEMPTS=3

# ---------------------------------------------------------------- sweep of unreferenced content
# Content no request has wanted for this long (ms, 7 days) has its CAR and pin record deleted. The created
# destination bucket is versioned: a deleted CAR stays recoverable for 30 more days. At least 3600000 (1 h).
UNREFERENCED_RETENTION_MS=604800000
# Most pins one sweep examines, and how often the sweep runs (minutes, at least 5).
UNREFERENCED_SWEEP_LIMIT=1000
UNREFERENCED_SWEEP_INTERVAL_MINUTES=60

# ---------------------------------------------------------------- reconciler of stuck pins (README.md, "The reconciler")
# How often it runs (minutes, 1-60).
RECONCILE_INTERVAL_MINUTES=5
# How long a pin stays queued, or pinning under an expired lease, before it counts as having no job (ms).
# Default: 1 hour, or 2 x (RETRY_MAX_DELAY_SECONDS + VISIBILITY_TIMEOUT_SECONDS) when that is more.
RECONCILE_AFTER_MS=
# Most pins one run examines (the next run continues).
RECONCILE_LIMIT=500

# ---------------------------------------------------------------- NFT collections (README.md, "Collections API")
# Seconds archiving waits between two passes over a collection's tokens while their pins are being fetched (<= 900).
COLLECTION_ADVANCE_DELAY_SECONDS=10
# Pages of tokens (100 each) one enumeration job reads (checkpointed after each) before the next job continues.
COLLECTION_PAGES_PER_JOB=10
# Largest stored CAR the collection jobs Lambda reads into memory to find a token's metadata file; the Lambda's
# memory is 2 x this + 512 MB (at least 1024 MB).
COLLECTION_READ_CAR_BYTES=268435456
# Web-hosted token content (plain https:// URLs): largest file archived (imported into the Lambda's /tmp, sized
# 1.05 x this + 256 MB), longest fetch in ms (redirects included), redirects followed, and how long one
# archiving pass starts fetches (ms). Non-public addresses (loopback, private, link-local...) are refused
# unless COLLECTION_WEB_ALLOW_PRIVATE=true.
COLLECTION_WEB_MAX_BYTES=268435456
COLLECTION_WEB_TIMEOUT_MS=60000
COLLECTION_WEB_MAX_REDIRECTS=5
COLLECTION_WEB_WINDOW_MS=45000
COLLECTION_WEB_ALLOW_PRIVATE=false
# Minutes between two runs of the follow tick, which sends followed collections that are done to enumerate the
# tokens minted since (1-1440).
COLLECTION_FOLLOW_INTERVAL_MINUTES=5
# Followed collections one run of the follow tick looks at, the longest unchecked first (the next run continues).
COLLECTION_FOLLOW_LIMIT=100

# ---------------------------------------------------------------- functions and logs
# Validator Lambda memory in MB: 3008 (~1.7 vCPUs) is the most every account accepts (stacks/validator-sizing.ts).
VALIDATOR_MEMORY_MB=3008
# Concurrency reserved for the validator (0: none). Needs an account concurrency limit of at least this + 100.
VALIDATOR_RESERVED_CONCURRENCY=20
# The validator reads each CAR as ranged GETs of this many bytes, this many in flight.
VALIDATOR_READ_PART_BYTES=8388608
VALIDATOR_READ_CONCURRENCY=8
# fatal, error, warn, info, debug or trace.
LOG_LEVEL=info

# ---------------------------------------------------------------- alarms
# Alarm notifications go to this address too (confirm the subscription mail).
ALARM_EMAIL=
# Worker log lines at level error or above, per 5 minutes, that raise the worker-errors alarm.
ALARM_WORKER_ERRORS=5
# HTTP API 5xx answers per 5 minutes that raise the api-5xx alarm.
ALARM_API_5XX=5
# Age in seconds of the oldest pin job that raises the oldest-job alarm. Default: FETCH_TIMEOUT_MS + 1 hour.
ALARM_QUEUE_AGE_SECONDS=
# p90 seconds from request to pinned of small content (CARs up to 10 MiB), over 15 minutes twice running, that
# raise the slow-small-pins alarm: small reachable DAGs pin in seconds; 10 minutes allows one stall and its retry.
ALARM_TIME_TO_PIN_SMALL_P90_SECONDS=600
# Percent of fetch attempts failing over 15 minutes, twice running, that raise the job-failure-rate alarm (counted
# once ALARM_FAILURE_MIN_JOBS attempts end in 15 minutes): beyond half, workers or a flood of dead content.
ALARM_FAILURE_RATE_PERCENT=50
ALARM_FAILURE_MIN_JOBS=20
# Minutes of pin jobs sent with no pin stored that raise the nothing-stored alarm.
ALARM_NOTHING_STORED_MINUTES=60
