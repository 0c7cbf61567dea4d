"""Training: datasets from bags, SFT (cross-entropy + flow matching), GRPO with the three
rewards, evaluation, and the demo checkpoint trained on synthetic drives. torch,
transformers, PEFT (LoRA) and accelerate (DDP/FSDP, mixed precision) underneath."""
