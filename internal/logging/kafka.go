package logging

import (
	"context"
	"log/slog"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

// ForwardKafkaLogs writes librdkafka's own log lines (a client configured with go.logs.channel.enable=true)
// through log until the channel closes, which the client does when it is closed. Without it librdkafka prints
// them raw on stderr, which breaks a JSON log pipeline and hides lines such as "offset reset" from it. Levels
// are syslog's: 0–3 are errors, 4 warnings, 5–6 info, 7 debug (librdkafka's "debug" property).
func ForwardKafkaLogs(logs <-chan kafka.LogEvent, log *slog.Logger) {
	for e := range logs {
		lv := slog.LevelDebug
		switch {
		case e.Level <= 3:
			lv = slog.LevelError
		case e.Level == 4:
			lv = slog.LevelWarn
		case e.Level <= 6:
			lv = slog.LevelInfo
		}
		log.LogAttrs(context.Background(), lv, e.Message, slog.String("source", "librdkafka"),
			slog.String("kafka_client", e.Name), slog.String("kafka_tag", e.Tag))
	}
}
