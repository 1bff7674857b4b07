package cli

import (
	"fmt"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/spf13/cobra"
)

// kafkaFlags are the connection flags of the commands that talk to Kafka besides `run`.
type kafkaFlags struct {
	brokers string
	config  []string
}

func addKafkaFlags(cmd *cobra.Command, k *kafkaFlags, brokersUsage string) {
	f := cmd.Flags()
	f.StringVar(&k.brokers, "brokers", "", brokersUsage)
	f.StringArrayVar(&k.config, "kafka-config", nil, "librdkafka property key=value, repeatable (TLS, SASL, timeouts); in the environment, comma-separated")
}

// configMap is the librdkafka configuration: ours, then the user's --kafka-config over it, except the keys in
// fixed, which the command's guarantees depend on and which the user may only repeat with the same value.
func (k *kafkaFlags) configMap(ours kafka.ConfigMap, fixed map[string]string) (*kafka.ConfigMap, error) {
	user, err := parseKeyValues(k.config)
	if err != nil {
		return nil, err
	}
	cm := kafka.ConfigMap{"bootstrap.servers": k.brokers}
	for key, v := range ours {
		cm[key] = v
	}
	for key, v := range user {
		if want, ok := fixed[key]; ok && v != want {
			return nil, fmt.Errorf("kafka config %s=%s: this command needs %s=%s", key, v, key, want)
		}
		if err := cm.SetKey(key, v); err != nil {
			return nil, fmt.Errorf("kafka config %s: %w", key, err)
		}
	}
	for key, v := range fixed {
		cm[key] = v
	}
	return &cm, nil
}
