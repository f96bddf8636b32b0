package jetstream

import "encoding/json"

// A Codec turns tasks into message bodies and back. Decode's error makes
// the pool dead-letter the message without running it (see
// [pool.Lease]'s Task).
type Codec[T any] interface {
	Encode(task T) ([]byte, error)
	Decode(data []byte) (T, error)
}

// JSON is the default Codec: encoding/json's Marshal and Unmarshal.
type JSON[T any] struct{}

// Encode returns task as JSON.
func (JSON[T]) Encode(task T) ([]byte, error) { return json.Marshal(task) }

// Decode reads a task from JSON.
func (JSON[T]) Decode(data []byte) (T, error) {
	var task T
	err := json.Unmarshal(data, &task)
	return task, err
}
