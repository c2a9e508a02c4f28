"""On-chain deposits and withdrawals (Ethereum)."""
