package ring

import "time"

// Member is a node as this node currently knows it.
type Member struct {
	Meta
	GossipAddr string
	// Alive is false for a node that left or failed detection; such members
	// are kept for deadRetention (longer while their shards are still
	// placed: see presenceOf) so a status page can show them.
	Alive bool
}

// deadRetention is how long a departed member stays listed by Members.
const deadRetention = 5 * time.Minute
