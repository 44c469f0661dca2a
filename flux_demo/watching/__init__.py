"""Watching FLUX denoise: what each step predicts (`steps`, `previews`), a recorded run (`trajectory`),
where each prompt word lands in the picture (`word_maps`), what each text encoder contributes
(`ablation`) and the model's shape next to the full-size one (`architecture`)."""
