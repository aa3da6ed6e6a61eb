# ---------------------------------------------------------------------------
# Event-driven loader (processed bucket -> SQS -> loaders.handler -> database)
# ---------------------------------------------------------------------------
variable "loader" {
  description = <<-EOT
    Event-driven loader into PostgreSQL/TimescaleDB or InfluxDB; nothing is created while target is null.
    target: "postgres" or "influxdb". secret_arn: Secrets Manager secret holding a JSON object of the
    GPULAKE_PG_* / GPULAKE_INFLUX_* settings of docs/loaders.md (or a bare PostgreSQL DSN).
    secret_kms_key_arn: the secret's customer-managed key (null = aws/secretsmanager).
    subnet_ids / security_group_ids: where the function runs (empty = outside any VPC, e.g. a public InfluxDB Cloud).
    reserved_concurrency (2-50) caps concurrent database writers; batch_size (1-10000) and batching_window_s (0-300)
    decide how many objects one invocation loads over one connection; max_receive_count deliveries before the DLQ;
    lag_alarm_s: age of the oldest queued notification that raises the lag alarm.
  EOT
  type = object({
    target               = optional(string)
    secret_arn           = optional(string)
    secret_kms_key_arn   = optional(string)
    subnet_ids           = optional(list(string), [])
    security_group_ids   = optional(list(string), [])
    zip_path             = optional(string, "../build/gpulake-loader.zip")
    layer_zip_path       = optional(string, "../build/layers/gpulake-loader-layer.zip")
    memory_mb            = optional(number, 1024)
    timeout_s            = optional(number, 300)
    reserved_concurrency = optional(number, 2)
    batch_size           = optional(number, 100)
    batching_window_s    = optional(number, 60)
    max_receive_count    = optional(number, 5)
    lag_alarm_s          = optional(number, 900)
  })
  default = {}

  validation {
    condition     = var.loader.target == null || contains(["postgres", "influxdb"], coalesce(var.loader.target, "none"))
    error_message = "loader.target must be null (no loader), \"postgres\" or \"influxdb\"."
  }

  validation {
    condition     = var.loader.target == null || var.loader.secret_arn != null
    error_message = "loader.secret_arn is required when loader.target is set (the DSN or token lives in Secrets Manager)."
  }

  validation {
    condition     = var.loader.reserved_concurrency >= 2 && var.loader.reserved_concurrency <= 50
    error_message = "loader.reserved_concurrency must be between 2 (the SQS event source minimum) and 50."
  }

  validation {
    condition     = var.loader.batch_size >= 1 && var.loader.batch_size <= 10000 && var.loader.batching_window_s >= 0 && var.loader.batching_window_s <= 300
    error_message = "loader.batch_size must be 1-10000 and loader.batching_window_s 0-300."
  }

  validation {
    condition     = var.loader.timeout_s >= 30 && var.loader.timeout_s <= 900
    error_message = "loader.timeout_s must be between 30 and 900."
  }

  validation {
    condition     = min(length(var.loader.subnet_ids), 1) == min(length(var.loader.security_group_ids), 1)
    error_message = "loader.subnet_ids and loader.security_group_ids go together (both empty = no VPC)."
  }
}
