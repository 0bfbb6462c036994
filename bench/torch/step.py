"""A full training step of ViT-B/16 or RoBERTa-base with LoRA on q, k, v (+ the head) in PyTorch eager:
frozen backbone, PEFT-style LoRA, trainable head, cross-entropy, torch.optim.AdamW."""
from common import args, emit, serve, setup, time_it
from models import build, lora_factory, train_step

a = args()
setup(a)
model, inputs, labels = build(a["config"], lora_factory(a.get("rank", 8), a.get("scaling", 1.0)), a["batch"], a.get("seq_len"), a.get("dropout", 0.0), a.get("device", "cpu"))
step, n_trainable = train_step(model, inputs, labels)
info = {"trainable_params": n_trainable, "params": sum(q.numel() for q in model.parameters())}
if a.get("serve"):
    serve(step, info)
else:
    emit({"step": time_it(step, a.get("warmup", 3), a.get("runs", 5)), **info})
