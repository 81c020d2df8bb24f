# harden verify across a fleet as a Nomad parameterized batch job: each
# dispatch is one fleet run. The "shards" group's 7 allocations each
# verify a stable share of the policy's targets (verify --shard I/7, I the
# allocation's index) and write it as JSON onto a shared volume; the
# "report" group waits for the 7 shards and merges them with harden report
# into the report one machine would have written (JSON and the HTML
# dashboard). See deploy/README.md.
#
#   nomad var put nomad/jobs/harden-verify policy=@policy.yaml vault_token=@vault-token
#   nomad job run deploy/nomad/harden-verify.nomad.hcl    # registers it; runs nothing
#   nomad job dispatch harden-verify                      # one fleet run
#   nomad job dispatch -meta fail_on=high harden-verify   # exit 2 only for high and critical
#
# Why one dispatch per run (and not one per shard with the index as
# meta): a dispatch's allocations share its job ID
# (harden-verify/dispatch-<time>-<id>), which names the run's directory,
# so the merge reads exactly this run's shards, never a stale one, and
# NOMAD_ALLOC_INDEX is 0 to 6 within it. (A job dispatched once per shard
# would have NOMAD_ALLOC_INDEX 0 in every shard: pass the index
# explicitly then, --shard ${NOMAD_META_shard_index}/7.) Each shard also
# records the dispatch ID (--run-id) and the SHA-256 of the policy it
# loaded: harden report refuses shards that differ in either (a policy
# variable updated while the allocations started: dispatch again).
#
# Results on the harden-reports volume, per run:
#   /reports/harden-verify/dispatch-<time>-<id>/shard-<I>.json
#   /reports/harden-verify/dispatch-<time>-<id>/harden-report.{json,html}
# The trend of failing checks over the runs (harden report --history: the
# latest run's report, and each check that failed in some run, run by run:
# new, still failing, fixed, or unknown when the latest run could not tell):
#   harden report --history -i '/reports/harden-verify/dispatch-*/harden-report.json' --format html -o trend.html
#
# The volume: a CSI volume every client can mount read-write at once
# (multi-node-multi-writer), registered as harden-reports. The policy's
# secret paths point into the task's secrets directory
# (token_file: /secrets/vault-token). The image is yours to build, as for
# the Kubernetes Jobs (deploy/kubernetes).
#
# To change the number of shards, change all three 7s: the shards group's
# count, the --shard count and SHARDS in the report group.
job "harden-verify" {
  type = "batch"

  parameterized {
    payload       = "forbidden"
    meta_optional = ["fail_on"]
  }

  meta {
    fail_on = "info"
  }

  group "shards" {
    count = 7

    # Exit 2 (failing checks) and 3 (a target in error) come after the
    # shard's JSON is written: running the shard again would find the
    # same. The allocation fails, and so does the dispatched job.
    restart {
      attempts = 0
      mode     = "fail"
    }

    reschedule {
      attempts  = 0
      unlimited = false
    }

    volume "reports" {
      type            = "csi"
      source          = "harden-reports"
      access_mode     = "multi-node-multi-writer"
      attachment_mode = "file-system"
    }

    task "rundir" {
      lifecycle {
        hook    = "prestart"
        sidecar = false
      }

      driver = "docker"

      config {
        image   = "busybox:1.36"
        command = "mkdir"
        args    = ["-p", "/reports/${NOMAD_JOB_ID}"]
      }

      volume_mount {
        volume      = "reports"
        destination = "/reports"
      }
    }

    task "verify" {
      driver = "docker"

      config {
        image   = "registry.example.com/harden:latest"
        command = "/usr/local/bin/harden"
        args    = ["verify", "-f", "/local/policy.yaml", "--shard", "${NOMAD_ALLOC_INDEX}/7", "--run-id", "${NOMAD_JOB_ID}", "--inventory", "--format", "json", "-o", "/reports/${NOMAD_JOB_ID}/shard-${NOMAD_ALLOC_INDEX}.json"]
      }

      env {
        HARDEN_PLUGIN_PATH = "/usr/local/lib/harden/plugins"
        HARDEN_PLUGIN_LOCK = "/usr/local/lib/harden/plugins.lock"
        HARDEN_STATE_DIR   = "/local/harden"
      }

      template {
        destination = "local/policy.yaml"
        data        = "{{ with nomadVar \"nomad/jobs/harden-verify\" }}{{ .policy }}{{ end }}"
      }

      # harden refuses secret files others may read.
      template {
        destination = "secrets/vault-token"
        perms       = "0400"
        data        = "{{ with nomadVar \"nomad/jobs/harden-verify\" }}{{ .vault_token }}{{ end }}"
      }

      volume_mount {
        volume      = "reports"
        destination = "/reports"
      }

      resources {
        cpu    = 200
        memory = 512
      }
    }
  }

  group "report" {
    count = 1

    # Exit 2 or 3 is the fleet's verdict, not a reason to merge again.
    restart {
      attempts = 0
      mode     = "fail"
    }

    reschedule {
      attempts  = 0
      unlimited = false
    }

    volume "reports" {
      type            = "csi"
      source          = "harden-reports"
      access_mode     = "multi-node-multi-writer"
      attachment_mode = "file-system"
    }

    # Waits for every shard's JSON (each appears whole: harden writes a
    # temporary file and renames it), for up to an hour.
    task "wait-for-shards" {
      lifecycle {
        hook    = "prestart"
        sidecar = false
      }

      driver = "docker"

      config {
        image   = "busybox:1.36"
        command = "/bin/sh"
        args = ["-c", <<-SCRIPT
          set -eu
          dir="/reports/$NOMAD_JOB_ID"
          deadline=$(( $(date +%s) + 3600 ))
          while :; do
            have=0 i=0
            while [ "$i" -lt "$SHARDS" ]; do
              if [ -f "$dir/shard-$i.json" ]; then have=$((have + 1)); fi
              i=$((i + 1))
            done
            if [ "$have" -eq "$SHARDS" ]; then break; fi
            if [ "$(date +%s)" -ge "$deadline" ]; then
              echo "only $have of $SHARDS shards after an hour: see nomad job status $NOMAD_JOB_ID" >&2
              exit 1
            fi
            sleep 5
          done
          echo "merging $SHARDS shards in $dir"
          SCRIPT
        ]
      }

      env {
        SHARDS = "7"
      }

      volume_mount {
        volume      = "reports"
        destination = "/reports"
      }
    }

    task "report" {
      driver = "docker"

      config {
        image   = "registry.example.com/harden:latest"
        command = "/usr/local/bin/harden"
        # harden expands the pattern itself and refuses to merge unless
        # every shard of 7 is there, of one run ID and policy version.
        args = ["report", "-i", "/reports/${NOMAD_JOB_ID}/shard-*.json", "--format", "json", "--format", "html", "--output-dir", "/reports/${NOMAD_JOB_ID}", "--fail-on", "${NOMAD_META_fail_on}"]
      }

      volume_mount {
        volume      = "reports"
        destination = "/reports"
      }

      resources {
        cpu    = 200
        memory = 512
      }
    }
  }
}
