"""AWS tooling: provision the queues and rule, verify the flow, tail the queue, local mode."""
