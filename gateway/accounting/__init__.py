"""What a request used and cost: token counting and estimates (tokens), and the recorder that
turns a finished request into its log row, metrics, session turn and budget settlement."""
