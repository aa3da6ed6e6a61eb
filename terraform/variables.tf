variable "region" {
  description = "AWS region to deploy into."
  type        = string
  default     = "eu-west-1"

  validation {
    condition     = can(regex("^[a-z]{2}(-[a-z]+)+-[0-9]$", var.region))
    error_message = "region must look like an AWS region name, e.g. eu-west-1."
  }
}

variable "name" {
  description = "Name prefix of every resource (buckets get the account ID appended to stay globally unique)."
  type        = string
  default     = "gpulake"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,30}[a-z0-9]$", var.name))
    error_message = "name must be 3-32 characters of lowercase letters, digits and hyphens, starting with a letter."
  }
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}

variable "raw_prefix" {
  description = "Key prefix of the raw bucket that triggers ingest (\"\" = the whole bucket). Ends with / when set."
  type        = string
  default     = ""

  validation {
    condition     = var.raw_prefix == "" || can(regex("^[A-Za-z0-9!_.*'()-]+(/[A-Za-z0-9!_.*'()-]+)*/$", var.raw_prefix))
    error_message = "raw_prefix must be empty or a key prefix ending with /, e.g. incoming/."
  }
}

variable "processed_prefix" {
  description = "Key prefix inside the processed bucket for metrics/, alerts/ and quarantine/ (\"\" = bucket root). Ends with / when set."
  type        = string
  default     = ""

  validation {
    condition     = var.processed_prefix == "" || can(regex("^[A-Za-z0-9!_.*'()-]+(/[A-Za-z0-9!_.*'()-]+)*/$", var.processed_prefix))
    error_message = "processed_prefix must be empty or a key prefix ending with /, e.g. gpulake/."
  }
}

variable "raw_retention_days" {
  description = "Days raw uploads are kept before S3 expires them (the processed Parquet stays)."
  type        = number
  default     = 30

  validation {
    condition     = var.raw_retention_days >= 1 && floor(var.raw_retention_days) == var.raw_retention_days
    error_message = "raw_retention_days must be a whole number of days, at least 1."
  }
}

variable "processed_ia_transition_days" {
  description = "Days after which processed objects move to S3 Standard-IA (AWS requires at least 30)."
  type        = number
  default     = 30

  validation {
    condition     = var.processed_ia_transition_days >= 30 && floor(var.processed_ia_transition_days) == var.processed_ia_transition_days
    error_message = "processed_ia_transition_days must be a whole number, at least 30 (an S3 rule for Standard-IA)."
  }
}

variable "processed_glacier_ir_transition_days" {
  description = "Days after which processed objects move on to S3 Glacier Instant Retrieval (null = stay in Standard-IA); must be at least processed_ia_transition_days + 30."
  type        = number
  default     = null

  validation {
    condition     = var.processed_glacier_ir_transition_days == null || try(var.processed_glacier_ir_transition_days >= var.processed_ia_transition_days + 30, false)
    error_message = "processed_glacier_ir_transition_days must be null or at least processed_ia_transition_days + 30 (S3 keeps objects 30 days in Standard-IA)."
  }
}

variable "processed_expiration_days" {
  description = "Days after which processed objects (metrics, alerts, quarantine) are deleted (null = kept); databases keep what they loaded, but sync --full can no longer reload them."
  type        = number
  default     = null

  validation {
    condition     = var.processed_expiration_days == null || try(var.processed_expiration_days > var.processed_ia_transition_days, false)
    error_message = "processed_expiration_days must be null or later than processed_ia_transition_days."
  }
}

variable "kms_key_arn" {
  description = "Customer-managed KMS key for the buckets (null = SSE-S3)."
  type        = string
  default     = null

  validation {
    condition     = var.kms_key_arn == null || can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/.+$", var.kms_key_arn))
    error_message = "kms_key_arn must be a KMS key ARN (arn:aws:kms:<region>:<account>:key/<id>) or null."
  }
}

variable "access_log_bucket" {
  description = "Existing bucket receiving S3 server access logs of both buckets (null = no access logging)."
  type        = string
  default     = null
}

variable "force_destroy" {
  description = "Let `terraform destroy` delete buckets that still hold objects (keep false in production)."
  type        = bool
  default     = false
}

variable "python_runtime" {
  description = "Lambda Python runtime; the layers are built for Python 3.12 (scripts/package_lambda.py LAMBDA): rebuild them for another."
  type        = string
  default     = "python3.12"

  validation {
    condition     = contains(["python3.12", "python3.13"], var.python_runtime)
    error_message = "python_runtime must be python3.12 or python3.13."
  }
}

variable "lambda_zip_path" {
  description = "Deployment zip built by `make package` (scripts/package_lambda.py)."
  type        = string
  default     = "../build/gpulake-ingest.zip"
}

variable "ingest_layer_zip_path" {
  description = "Dependency layer of the ingest function (pyarrow, numpy, tzdata, Powertools) built by `make package` (scripts/package_lambda.py --layers)."
  type        = string
  default     = "../build/layers/gpulake-ingest-layer.zip"
}

variable "lambda_memory_mb" {
  description = "Memory of the ingest function (MB); CPU scales with it. It also sets the largest object accepted (decompressed): (memory - 250) / 2.2 for dcgm, / 10 for the CSV formats; 2560 fits a 1 GiB dcgm object (docs/deploy.md)."
  type        = number
  default     = 2560

  validation {
    condition     = var.lambda_memory_mb >= 512 && var.lambda_memory_mb <= 10240
    error_message = "lambda_memory_mb must be between 512 and 10240 (pyarrow needs at least 512)."
  }
}

variable "lambda_timeout_s" {
  description = "Timeout of the ingest function in seconds; the queue's visibility timeout is 6x this."
  type        = number
  default     = 120

  validation {
    condition     = var.lambda_timeout_s >= 10 && var.lambda_timeout_s <= 900
    error_message = "lambda_timeout_s must be between 10 and 900."
  }
}

variable "reserved_concurrency" {
  description = "Reserved concurrent executions of the ingest function (-1 = unreserved)."
  type        = number
  default     = -1

  validation {
    condition     = var.reserved_concurrency >= -1
    error_message = "reserved_concurrency must be -1 (unreserved) or a non-negative number."
  }
}

variable "max_concurrency" {
  description = "Most concurrent invocations the SQS event source starts (2-1000); protects the account's concurrency."
  type        = number
  default     = 10

  validation {
    condition     = var.max_concurrency >= 2 && var.max_concurrency <= 1000
    error_message = "max_concurrency must be between 2 and 1000 (an SQS event source limit)."
  }
}

variable "enable_xray" {
  description = "Active X-Ray tracing on the ingest function."
  type        = bool
  default     = true
}

variable "batch_size" {
  description = "SQS messages (S3 objects) per invocation."
  type        = number
  default     = 10

  validation {
    condition     = var.batch_size >= 1 && var.batch_size <= 10000
    error_message = "batch_size must be between 1 and 10000."
  }
}

variable "batching_window_s" {
  description = "Seconds the event source waits to fill a batch."
  type        = number
  default     = 5

  validation {
    condition     = var.batching_window_s >= 0 && var.batching_window_s <= 300
    error_message = "batching_window_s must be between 0 and 300."
  }
}

variable "max_receive_count" {
  description = "Deliveries of a message before it moves to the dead-letter queue."
  type        = number
  default     = 5

  validation {
    condition     = var.max_receive_count >= 1 && var.max_receive_count <= 1000
    error_message = "max_receive_count must be between 1 and 1000."
  }
}

variable "log_retention_days" {
  description = "Retention of the function's CloudWatch log group."
  type        = number
  default     = 90

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a value CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, ...)."
  }
}

variable "source_tz" {
  description = "IANA zone of local timestamps (GPU-Z, nvidia-smi, thermal CSV) when an object has no tz metadata."
  type        = string
  default     = "UTC"
}

variable "default_temp_limit_c" {
  description = "Over-temperature alert limit (°C) for GPU models without a built-in one."
  type        = number
  default     = 85
}

variable "hbm_temp_limit_c" {
  description = "HBM (memory) temperature alert limit (°C)."
  type        = number
  default     = 95
}

variable "alert_email" {
  description = "E-mail address subscribed to the alerts topic (null = no subscription; confirm the e-mail AWS sends)."
  type        = string
  default     = null

  validation {
    condition     = var.alert_email == null || can(regex("^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$", var.alert_email))
    error_message = "alert_email must be an e-mail address or null."
  }
}

variable "enable_athena" {
  description = "Create a Glue database and table over metrics/ (partition projection) and an Athena workgroup."
  type        = bool
  default     = true
}

variable "athena_projection_start_date" {
  description = "First date (YYYY-MM-DD) Athena's partition projection considers for date=."
  type        = string
  default     = "2024-01-01"

  validation {
    condition     = can(regex("^[0-9]{4}-[0-9]{2}-[0-9]{2}$", var.athena_projection_start_date))
    error_message = "athena_projection_start_date must be YYYY-MM-DD."
  }
}

# ---------------------------------------------------------------------------
# Alert episodes (terraform/episodes.tf, docs/operations.md "Alert lifecycle")
# ---------------------------------------------------------------------------

variable "upload_interval_s" {
  description = "Slowest collector upload interval (s): the fallback and ceiling of each node's interval, measured from its objects."
  type        = number
  default     = 300

  validation {
    condition     = var.upload_interval_s >= 10
    error_message = "upload_interval_s must be at least 10 seconds."
  }
}

variable "continue_factor" {
  description = "An alert continues an episode that ended within this many upload intervals."
  type        = number
  default     = 2

  validation {
    condition     = var.continue_factor > 0
    error_message = "continue_factor must be greater than 0."
  }
}

variable "resolve_factor" {
  description = "The sweeper resolves an episode not extended for this many upload intervals (more than continue_factor)."
  type        = number
  default     = 3

  validation {
    condition     = var.resolve_factor > 0
    error_message = "resolve_factor must be greater than 0."
  }
}

variable "repeat_interval_s" {
  description = "Re-notify a continuing episode every this many seconds (0 = never; Alertmanager's repeat_interval)."
  type        = number
  default     = 14400

  validation {
    condition     = var.repeat_interval_s >= 0
    error_message = "repeat_interval_s must be 0 (never) or a number of seconds."
  }
}

variable "group_interval_s" {
  description = "A node's alert changes are sent together at most this often, in seconds (0 = each upload's at once; a node's first critical in an interval does not wait; Alertmanager's group_interval)."
  type        = number
  default     = 1800

  validation {
    condition     = var.group_interval_s >= 0
    error_message = "group_interval_s must be 0 (send each upload's changes at once) or a number of seconds."
  }
}

variable "episode_ttl_days" {
  description = "Days a closed episode stays in the table (DynamoDB TTL); episodes/ in the processed bucket keeps it."
  type        = number
  default     = 30

  validation {
    condition     = var.episode_ttl_days >= 1
    error_message = "episode_ttl_days must be at least 1."
  }
}

variable "rules_file" {
  description = "Threshold rules file inside the Lambda package, relative to lambda/ (\"\" = gpulake/alerts/rules.default.jsonl)."
  type        = string
  default     = ""
}
