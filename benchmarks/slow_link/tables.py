"""The headers of the tables `python -m benchmarks.slow_link` prints."""

STEP_HEADER = ("| workers | link | parameters | configuration | step ms | "
               "compute ms | communication ms | vote / sum | payload B per "
               "replica | loopback B per replica |")
TTA_HEADER = ("| link | workers | configuration | lr | time to target s | "
              "reached | steps to target | final val acc | test acc | "
              "time vs Adam |")
LR_HEADER = "| configuration | lr chosen | validation accuracy per lr |"
INPROCESS_HEADER = "| replicas | configuration | step ms | vote / sum |"
BYTES_HEADER = ("| link | workers | configuration | loopback B per step "
                "per worker | ring B per step per worker | fewer than "
                "float32 |")
TABLE_HEADERS = [INPROCESS_HEADER, STEP_HEADER, TTA_HEADER, LR_HEADER,
                 BYTES_HEADER]
