"""English and Korean UI text. Gradio picks the language of labels in the browser; what the server says
once a handler runs (errors, notes, summaries: `flux_demo.messages`) is rendered in `visitor_language`.
Model names and prompts stay as typed. The seed material of this project is a Korean course on FLUX, so
Korean readers are core users.
"""

from __future__ import annotations

import gradio as gr

from flux_demo.messages import LANGUAGES, Message, model_name

EN = {
    "description": (
        "Text-to-image with FLUX.1 [schnell], FLUX.1 [dev] and FLUX.2 [klein] on Hugging Face diffusers, "
        "typography tests with OCR scoring, and side-by-side model comparison."
    ),
    "tab_generate": "Text to image",
    "tab_compare": "Compare models",
    "tab_typography": "Typography lab",
    "tab_edit": "Edit",
    "references": "References (1–10 images: upload, paste or drop)",
    "mode": "Mode",
    "mode_edit": "Edit with references",
    "mode_img2img": "Image to image",
    "mode_inpaint": "Inpaint",
    "strength": "Strength (how much to change)",
    "mask": "Mask: paint the area to repaint (white repaints)",
    "mask_load": "Paint over the first reference",
    "use_as_reference": "Use as reference",
    "before_after": "Before / after (first reference and result)",
    "edit_note": (
        "**How references work.** FLUX.2 [klein] reads every reference image as extra tokens next to the "
        "text, so the prompt can name them by position: *put the cat from image 2 on the sofa from image 1*. "
        "Each reference costs time on every step. Image to image and inpainting use the first image only."
    ),
    "edit_size_info": (
        "Width and height 0 take the first reference's size, snapped to 16 and capped to the model's area."
    ),
    "edit_link_info": "A link carries the settings only: the reference images must be added again.",
    "edit_none": "None of the served models offers editing.",
    "references_again": "**Add the reference images again**, in this order (SHA-256 prefixes)",
    "prompt": "Prompt",
    "prompt_info": "Enter runs. Put text you want rendered in quotes.",
    "model": "Model",
    "models": "Models",
    "run": "Run",
    "stop": "Stop",
    "advanced": "Advanced",
    "aspect": "Aspect ratio",
    "width": "Width",
    "height": "Height",
    "steps": "Steps",
    "guidance": "Guidance",
    "seed": "Seed",
    "randomize": "Randomize seed",
    "result": "Result",
    "seed_used": "Seed used",
    "details": "Details",
    "examples": "Examples",
    "copy_link": "Copy link",
    "link_placeholder": "Run first, then copy a link to this result",
    "link_label": "Link to this result",
    "restore": "Restore settings from a PNG",
    "restore_png": "PNG made by this demo",
    "compare": "Compare",
    "compare_settings": "Per-model settings (recommended values; edit to taste)",
    "results": "Results",
    "compare_two": "Compare two",
    "left": "Left",
    "right": "Right",
    "per_model": "Per model",
    "sweep": "Seed sweep",
    "sweep_seeds": "Seeds",
    "sweep_run": "Run seed sweep",
    "sweep_runs": "Seed sweep runs",
    "ocr_read": "What the OCR read",
    "per_target": "Per target",
    "char_diff": "Character diff (target against what the OCR read)",
    "scores_json": "Scores as JSON",
    "typo_text": "Text to render",
    "scene": "Scene",
    "write_prompt": "Write the prompt",
    "typo_prompt": "Prompt with the text in quotes",
    "settings": "Settings",
    "typo_run": "Generate and score",
    "generated_image": "Generated image",
    "score_image": "Image to score",
    "expected": "Expected text",
    "score": "Score",
    "count": "Suite size",
    "categories": "Categories (none ticked: all)",
    "suite_run": "Run the suite",
    "leaderboard": "Leaderboard",
    "by_category": "By category",
    "suite_images": "Suite images",
    "typo_tab_generate": "Generate and score",
    "typo_tab_suite": "Run the suite",
    "typo_tab_score": "Score any image",
    "live_preview": "Live preview",
    "loras": "LoRA adapters",
    "lora": "LoRA",
    "lora_2": "Second LoRA",
    "lora_scale": "LoRA scale",
    "lora_2_scale": "Second LoRA scale",
    "lora_none": "No LoRA",
    "lora_info": "A curated LoRA for this model, or type any Hub LoRA id (owner/name).",
    "num_images": "Images",
    "num_images_info": "1–4 images in one run, with seeds seed, seed+1, …",
    "batch": "All images of the run",
    "history": "History (kept in this browser)",
    "history_info": "Your recent results: pick one to reuse its settings or copy its link.",
    "history_reuse": "Reuse settings",
    "history_clear": "Clear history",
    "live_preview_info": "Show the predicted clean image after every step (x₀ = x_t − σ·v).",
    "tab_how": "How FLUX works",
    "how_intro": (
        "A FLUX model turns noise into a picture in a few straight steps. Run a prompt and watch what the "
        "model has in mind at each step and where each word of the prompt lands; below, the chapter's ideas "
        "(rectified flow, the MM-DiT's two kinds of blocks, two text encoders, RoPE, distillation) are drawn "
        "from the model served here. Figures come from the loaded model and your run; the full-size model's "
        "come from its published configuration."
    ),
    "how_run": "Run and record every step",
    "how_words": "Words to map",
    "how_words_info": "Words of the prompt, comma-separated (at most 8); empty for none.",
    "how_word_maps": "Where each word lands, step by step",
    "how_word_maps_step": "Word maps at this step",
    "how_trajectory": (
        "### What the model has in mind at each step\n"
        "Rectified flow: x_t = (1 − t)·x₀ + t·noise, with t going from 1 (pure noise) to 0 (the picture). "
        "At each step the transformer predicts the velocity v = noise − x₀, so the clean image it has in "
        "mind is **x₀ = x_t − t·v**, and the Euler step moves x_t on to the next t. Captions read "
        "*step/steps · t before → after · seconds*; diffusers' timestep is 1000·t. The previews are "
        "decoded by the model's own VAE (offline models) or by a latent→RGB map fitted to it (full-size "
        "models), so their colours are the final image's."
    ),
    "how_predicted": "Predicted clean image x₀ at each step",
    "how_noisy": "Noisy latents x_t entering each step (step 1 starts from pure noise)",
    "how_step": "Step",
    "how_predicted_one": "x₀ at this step",
    "how_noisy_one": "x_t entering this step",
    "how_caption": "Step · t before → after · seconds",
    "how_words_md": (
        "### Where each word lands\n"
        "The word maps are the model's own cross-attention: in every single-stream block, how much each "
        "image token attends to the chosen word's tokens, averaged over the heads and blocks and scaled so "
        "the strongest token is 1. Reading the attention does not change the picture. A model that draws a "
        "word from its tokens shows it where the word is drawn (nano-klein finds its sign's word); the "
        "offline FLUX.1 nano models draw from CLIP's pooled vector instead (the ablation below measures it), "
        "so their maps hardly tell the word from the prompt's other words."
    ),
    "how_schedule_md": (
        "### The schedule: t from 1 to 0\n"
        "Each dot is one step. Every run starts from pure noise at t = 1 and ends at the picture, t = 0. "
        "Models whose scheduler shifts with the number of image tokens (FLUX.1 [dev], FLUX.2 [klein]) spend "
        "more of their steps at high noise for bigger pictures; schnell's steps are evenly spaced at every "
        "size. The chapter's t is the scheduler's σ; diffusers' `timesteps` are 1000·σ. Only sizes each "
        "model can make are drawn."
    ),
    "how_schedule_series": "{name} · {steps} steps · {w}×{h}",
    "how_noise_start": "noise (t = 1)",
    "how_image_end": "image (t = 0)",
    "how_schedule_x": "progress through the run",
    "how_schedule_y": "t (= σ)",
    "how_architecture_md": (
        "### The MM-DiT\n"
        "FLUX's transformer reads text tokens and image tokens together. Figures are the full-size model's; "
        "the model served here is in brackets."
    ),
    "how_dia_tokens": "text tokens",
    "how_dia_noise": "noise latents",
    "how_dia_patches": "2×2 patches → tokens",
    "how_dia_pooled": "pooled vector + t",
    "how_dia_time_only": "t only (no pooled text)",
    "how_dia_double": "{count} double-stream blocks",
    "how_dia_double_what": "text and image keep their own weights",
    "how_dia_joint": "one joint attention over both",
    "how_dia_single": "{count} single-stream blocks",
    "how_dia_single_what": "text + image as one sequence, shared weights",
    "how_dia_out": "image tokens → velocity v",
    "how_dia_width": "width {width} · {heads} attention heads",
    "how_dia_legend": "{name}; in brackets: {loaded}, served here. The yellow box modulates every block.",
    "how_blocks_md": (
        "**Double-stream blocks** ({double} in {name}, {double_each} parameters each) give text and image "
        "tokens their own projections and MLPs but one attention over both, so information flows both ways. "
        "**Single-stream blocks** ({single}, {single_each} each) then treat text and image as one sequence "
        "with shared weights: cheaper, once the two streams have exchanged enough. {name}'s transformer has "
        "{total} parameters; {loaded} has {l_double} double-stream and {l_single} single-stream blocks, "
        "{l_total} parameters."
    ),
    "how_encoders_title": "### Two text encoders, two roles",
    "how_encoders_two_md": (
        "**{pooled}** ({pooled_size} parameters) gives one pooled vector for the whole prompt. With the "
        "timestep it sets the scale and shift of every block (modulation): it steers the picture as a whole "
        "and is not attended over. **{tokens}** ({tokens_size}) gives one vector per token, up to {length} "
        "tokens: these are the text tokens the image tokens attend over, and the chapter credits them with "
        "text rendering. The pipeline feeds `prompt` to CLIP and `prompt_2` to T5 (the same text unless "
        "both are set); the ablation at the end of the page runs each alone."
    ),
    "how_encoders_one_md": (
        "This model has one text encoder, **{tokens}** ({tokens_size} parameters): hidden states from three "
        "of its layers become the text tokens the image attends over (up to {length}, the prompt wrapped in "
        "its chat template). There is no pooled text vector: the blocks are modulated by the timestep alone."
    ),
    "how_tokens_label": "Tokens, labelled by encoder and role",
    "how_counts": "Token counts",
    "how_role_attended": "attended tokens",
    "how_role_pooled": "pooled vector",
    "how_image_tokens": "image tokens",
    "how_rope_title": "### RoPE: where each token sits",
    "how_rope_md": (
        "Each attention head's {head_dim} dimensions are split among the position axes: {axes}. A token has "
        "a position on each axis and RoPE rotates its query and key by it, so attention sees relative "
        "positions and any picture size works without a learned table. Image tokens take their row and "
        "column; FLUX.1's text tokens all sit at 0, FLUX.2 gives each text token its own place on the text "
        "axis. The index axis tells reference images apart (0 for the picture being made)."
    ),
    "how_rope_axis_index": "index",
    "how_rope_axis_height": "height",
    "how_rope_axis_width": "width",
    "how_rope_axis_text": "text",
    "how_distill_md": (
        "### Distillation: few steps or many\n"
        "schnell was distilled adversarially to finish in 1–4 steps; dev was guidance-distilled to follow "
        "the prompt in about 28 steps without a second, unguided pass per step. This runs the chosen model's "
        "family at its own settings, and each guided model once more without guidance (its lowest value): "
        "the chart shows how far each step's x₀ still is from the final picture."
    ),
    "how_distill_run_button": "Compare distilled and guided runs",
    "how_distill_run": "{name} · {steps} steps · guidance {g:g}",
    "how_distill_x": "t at which the guess is made (1 = noise)",
    "how_distill_y": "mean |x₀ − final| (0–255)",
    "how_distill_table": "Runs",
    "how_distill_tiles": "x₀ at t ≈ 0.75, 0.5, 0.25 and at the end",
    "how_ablation_md": (
        "### Which encoder renders the text?\n"
        "The same prompt and seed with both encoders, then with each alone (the other gets an empty "
        "prompt); OCR reads the quoted text back (CER: character error rate, 0 is perfect). Models with "
        "one text encoder are refused."
    ),
    "how_ablation_run": "Run with each encoder alone",
    "how_ablation_images": "Both encoders, then each alone",
    "how_ablation_table": "Text read by OCR",
    "how_h_encoder": "encoder",
    "how_h_role": "role",
    "how_h_tokens": "tokens",
    "how_h_limit": "limit",
    "how_h_cut": "cut off",
    "how_h_encoders": "encoders",
    "how_h_read": "text read",
    "how_h_CER": "CER",
    "how_h_exact": "exact",
    "how_h_run": "run",
    "how_h_seconds": "seconds",
    "how_h_after_step_1": "|x₀ − final| after step 1",
    "how_h_halfway": "|x₀ − final| halfway",
    "offline_tiny_notice": (
        "**Offline preview models.** This app is running tiny FLUX models with random weights "
        "(`FLUX_DEMO_MODELS` chose them): they use the real pipelines but draw noise, not pictures. "
        "Leave `FLUX_DEMO_MODELS` unset for the trained offline nano models, or set "
        "`FLUX_DEMO_MODELS=schnell,dev,klein` on a machine with a CUDA GPU for the real ones."
    ),
    "offline_notice": (
        "**Offline models.** No GPU was found (or `FLUX_DEMO_MODELS` chose them), so this app runs "
        "**FLUX.1 nano [schnell]** and **[dev]**: small FLUX.1 models trained from "
        "scratch on a small synthetic grammar, with the real FLUX pipeline. They draw 256×256 pictures "
        'of two kinds: signs, `a sign that says "CAT"`, with one of {word_count} words ({words}); and '
        "shapes, `a red star on a blue background` ({colors}; {shapes}). Anything else "
        "gives abstract shapes. FLUX.2 [klein] runs as a tiny model with random weights and draws "
        "noise. To run the real FLUX models, start the app on a machine with a CUDA GPU (or a ZeroGPU "
        "Space), or set `FLUX_DEMO_MODELS=schnell,dev,klein`."
    ),
    # One line each: the notices above, folded (a phone shows the prompt and Run on its first screen).
    "offline_notice_short": "Offline: FLUX nano models, no GPU · more",
    "offline_tiny_notice_short": "Offline: random-weight models · more",
    "cpu_notice_short": "Real FLUX on the CPU: slow · more",
    # --- the visitor pass: hints, notes, table headers, categories, summaries, Stop, downloads ---
    **{
        "tab_generate_short": "Text to image",
        "tab_compare_short": "Compare",
        "tab_typography_short": "Typography",
        "custom_size": "Custom",
        "scene_info": "Describe the image; write {text} where the text goes, or it is added at the end.",
        "expected_info": "What the image should say, up to 500 characters.",
        "count_info": "Prompts per model, taken in turn from each chosen category.",
        "typo_intro": (
            "Test how well each model spells. Quoted text in the prompt is what the image should show; "
            "OCR (RapidOCR) reads the image back and compares. **CER** is the character error rate, 0–1, "
            "lower is better; *exact* needs every character and its case right; *normalised* ignores case, "
            "punctuation and spaces.\n\n"
            "**Korean and Japanese kana are read by Tesseract** when it is installed with its Korean and "
            "Japanese data (the *engine* column says which OCR read each target): RapidOCR cannot read "
            "Hangul and reads almost no kana. Without Tesseract such texts are marked *not scored* and "
            "left out of every mean and rate."
        ),
        "typo_offline_note": (
            "Offline, the nano models write the {word_count} words of their grammar (try the examples); "
            "other text, and the tiny klein model's noise, give a CER near 1."
        ),
        "download_csv": "Download CSV",
        "download_json": "Download JSON",
        "summary": "Summary",
        "details_json": "Details (JSON)",
        "scores": "Scores",
        "sweep_stop": "Stop",
        "no_result_yet": "Run first: the seed and details of the result appear here.",
        "typo_tab_check": "Check an image",
        "check_intro": (
            "Upload any image to see whether it carries this app's invisible watermark (or Black Forest "
            "Labs' own), a C2PA manifest (Content Credentials) and a digital source type that marks it as "
            "AI-generated; a PNG made here also brings back its settings, with a link that restores them. "
            "Cropping, heavy compression or a screenshot can remove a watermark: a missing mark proves "
            "nothing."
        ),
        "check_image": "Image to check",
        "check_run": "Check",
        "check_report": "Marks found (JSON)",
        "cpu_notice": (
            "**Real FLUX models on the CPU.** No GPU was found, so each image takes minutes and the models "
            "need tens of GB of RAM (they run in bf16 to halve it). A CUDA GPU or an Apple Silicon Mac is "
            "far faster."
        ),
    },
}

KO = {
    "description": (
        "Hugging Face diffusers로 FLUX.1 [schnell], FLUX.1 [dev], FLUX.2 [klein]을 실행하는 "
        "텍스트→이미지 데모. OCR 점수로 글자 렌더링을 시험하고 모델을 나란히 비교합니다."
    ),
    "tab_generate": "텍스트 → 이미지",
    "tab_compare": "모델 비교",
    "tab_typography": "타이포그래피 실험실",
    "tab_edit": "편집",
    "references": "참조 이미지 (1–10장: 업로드, 붙여넣기, 끌어다 놓기)",
    "mode": "모드",
    "mode_edit": "참조 이미지로 편집",
    "mode_img2img": "이미지 → 이미지",
    "mode_inpaint": "인페인팅",
    "strength": "강도 (얼마나 바꿀지)",
    "mask": "마스크: 다시 그릴 영역을 칠하세요 (흰색 = 다시 그림)",
    "mask_load": "첫 번째 참조 이미지 위에 칠하기",
    "use_as_reference": "참조 이미지로 사용",
    "before_after": "전 / 후 (첫 번째 참조 이미지와 결과)",
    "edit_note": (
        "**참조 이미지 사용법.** FLUX.2 [klein]은 참조 이미지를 텍스트 옆의 추가 토큰으로 읽으므로 "
        "프롬프트에서 순서로 부를 수 있습니다: *2번 이미지의 고양이를 1번 이미지의 소파 위에 올려 줘*. "
        "참조 이미지마다 매 스텝 시간이 늘어납니다. 이미지 → 이미지와 인페인팅은 첫 번째 이미지만 씁니다."
    ),
    "edit_size_info": (
        "너비와 높이가 0이면 첫 번째 참조 이미지 크기를 16의 배수로 맞추고 모델의 최대 면적으로 줄여 씁니다."
    ),
    "edit_link_info": "링크에는 설정만 담깁니다. 참조 이미지는 다시 추가해야 합니다.",
    "edit_none": "지금 제공하는 모델 중 편집을 지원하는 모델이 없습니다.",
    "references_again": "**참조 이미지를 다시 추가하세요**, 이 순서대로 (SHA-256 앞자리)",
    "prompt": "프롬프트",
    "prompt_info": "Enter로 실행합니다. 이미지에 넣을 글자는 따옴표로 감싸세요.",
    "model": "모델",
    "models": "모델",
    "run": "실행",
    "stop": "중지",
    "advanced": "고급 설정",
    "aspect": "화면 비율",
    "width": "너비",
    "height": "높이",
    "steps": "스텝 수",
    "guidance": "가이던스",
    "seed": "시드",
    "randomize": "시드 무작위",
    "result": "결과",
    "seed_used": "사용한 시드",
    "details": "세부 정보",
    "examples": "예시",
    "copy_link": "링크 복사",
    "link_placeholder": "먼저 실행한 뒤 이 결과의 링크를 복사하세요",
    "link_label": "이 결과의 링크",
    "restore": "PNG에서 설정 불러오기",
    "restore_png": "이 데모로 만든 PNG",
    "compare": "비교하기",
    "compare_settings": "모델별 설정 (권장값, 자유롭게 수정)",
    "results": "결과",
    "compare_two": "두 이미지 비교",
    "left": "왼쪽",
    "right": "오른쪽",
    "per_model": "모델별 결과",
    "sweep": "시드 스윕",
    "sweep_seeds": "시드 개수",
    "sweep_run": "시드 스윕 실행",
    "sweep_runs": "시드 스윕 결과",
    "ocr_read": "OCR이 읽은 내용",
    "per_target": "대상 텍스트별",
    "char_diff": "글자 단위 비교 (목표 대 OCR 결과)",
    "scores_json": "점수 (JSON)",
    "typo_text": "넣을 글자",
    "scene": "장면",
    "write_prompt": "프롬프트 만들기",
    "typo_prompt": "글자를 따옴표로 감싼 프롬프트",
    "settings": "설정",
    "typo_run": "생성하고 채점",
    "generated_image": "생성된 이미지",
    "score_image": "채점할 이미지",
    "expected": "기대하는 글자",
    "score": "채점",
    "count": "스위트 크기",
    "categories": "카테고리 (선택 안 하면 전체)",
    "suite_run": "스위트 실행",
    "leaderboard": "리더보드",
    "by_category": "카테고리별",
    "suite_images": "스위트 이미지",
    "typo_tab_generate": "생성하고 채점",
    "typo_tab_suite": "스위트 실행",
    "typo_tab_score": "이미지 채점",
    "live_preview": "실시간 미리보기",
    "loras": "LoRA 어댑터",
    "lora": "LoRA",
    "lora_2": "두 번째 LoRA",
    "lora_scale": "LoRA 강도",
    "lora_2_scale": "두 번째 LoRA 강도",
    "lora_none": "LoRA 없음",
    "lora_info": "이 모델용 추천 LoRA를 고르거나 Hub LoRA ID(owner/name)를 입력하세요.",
    "num_images": "이미지 수",
    "num_images_info": "한 번에 1–4장, 시드는 seed, seed+1, …",
    "batch": "이번 실행의 모든 이미지",
    "history": "기록 (이 브라우저에 저장)",
    "history_info": "최근 결과: 하나를 골라 설정을 다시 쓰거나 링크를 복사하세요.",
    "history_reuse": "설정 다시 쓰기",
    "history_clear": "기록 지우기",
    "live_preview_info": "스텝마다 예측한 깨끗한 이미지를 보여줍니다 (x₀ = x_t − σ·v).",
    "tab_how": "FLUX 작동 원리",
    "how_intro": (
        "FLUX 모델은 곧은 몇 걸음만에 노이즈를 그림으로 바꿉니다. 프롬프트를 실행해 스텝마다 모델이 "
        "그리고 있는 그림과 프롬프트의 각 단어가 그림의 어디에 놓이는지 지켜보세요. 아래에서는 챕터의 "
        "개념(정류 흐름, MM-DiT의 두 종류 블록, 두 텍스트 인코더, RoPE, 디스틸레이션)을 여기서 서비스 중인 "
        "모델로 보여 줍니다. 수치는 불러온 모델과 이번 실행에서, 실제 크기 모델의 수치는 공개된 설정에서 "
        "가져옵니다."
    ),
    "how_run": "실행하고 모든 스텝 기록",
    "how_words": "위치를 볼 단어",
    "how_words_info": "프롬프트의 단어를 쉼표로 구분해 입력(최대 8개). 비워 두면 보지 않습니다.",
    "how_word_maps": "스텝별로 각 단어가 놓이는 곳",
    "how_word_maps_step": "이 스텝의 단어 지도",
    "how_trajectory": (
        "### 스텝마다 모델이 그리고 있는 그림\n"
        "정류 흐름: x_t = (1 − t)·x₀ + t·노이즈, t는 1(순수 노이즈)에서 0(그림)으로 갑니다. 매 스텝 "
        "트랜스포머는 속도 v = 노이즈 − x₀ 를 예측하므로 모델이 그리고 있는 깨끗한 그림은 "
        "**x₀ = x_t − t·v** 이고, 오일러 스텝이 x_t를 다음 t로 옮깁니다. 캡션은 *스텝/전체 · t 이전 → 이후 "
        "· 초* 입니다. diffusers의 timestep은 1000·t입니다. 미리보기는 모델의 VAE(오프라인 모델) 또는 그 "
        "VAE에 맞춘 잠재→RGB 변환(실제 크기 모델)으로 디코딩하므로 색이 최종 이미지와 같습니다."
    ),
    "how_predicted": "스텝마다 예측한 깨끗한 이미지 x₀",
    "how_noisy": "각 스텝에 들어가는 노이즈 잠재 x_t (1스텝은 순수 노이즈에서 시작)",
    "how_step": "스텝",
    "how_predicted_one": "이 스텝의 x₀",
    "how_noisy_one": "이 스텝에 들어가는 x_t",
    "how_caption": "스텝 · t 이전 → 이후 · 초",
    "how_words_md": (
        "### 각 단어가 놓이는 곳\n"
        "단어 지도는 모델 자체의 교차 어텐션입니다. 모든 단일 스트림 블록에서 각 이미지 토큰이 고른 단어의 "
        "토큰에 주는 어텐션을 헤드와 블록에 대해 평균하고, 가장 강한 토큰이 1이 되도록 맞춥니다. 어텐션을 "
        "읽기만 하므로 그림은 바뀌지 않습니다. 단어를 토큰으로 그리는 모델은 단어가 그려진 곳을 보여 줍니다"
        "(nano-klein은 표지판의 단어를 찾습니다). 오프라인 FLUX.1 nano 모델은 대신 CLIP의 풀링 벡터로 "
        "그리므로(아래 절제 실험이 측정) 지도가 그 단어와 프롬프트의 다른 단어를 거의 구별하지 못합니다."
    ),
    "how_schedule_md": (
        "### 스케줄: t는 1에서 0으로\n"
        "점 하나가 한 스텝입니다. 모든 실행은 t = 1의 순수 노이즈에서 시작해 t = 0의 그림에서 끝납니다. "
        "이미지 토큰 수에 따라 스케줄을 이동시키는 모델(FLUX.1 [dev], FLUX.2 [klein])은 큰 그림일수록 높은 "
        "노이즈에서 더 많은 스텝을 씁니다. schnell의 스텝은 모든 크기에서 고르게 나뉩니다. 챕터의 t가 "
        "스케줄러의 σ이고, diffusers의 `timesteps`는 1000·σ입니다. 각 모델이 만들 수 있는 크기만 그립니다."
    ),
    "how_schedule_series": "{name} · {steps}스텝 · {w}×{h}",
    "how_noise_start": "노이즈 (t = 1)",
    "how_image_end": "그림 (t = 0)",
    "how_schedule_x": "실행 진행도",
    "how_schedule_y": "t (= σ)",
    "how_architecture_md": (
        "### MM-DiT\n"
        "FLUX의 트랜스포머는 텍스트 토큰과 이미지 토큰을 함께 읽습니다. 수치는 실제 크기 모델의 것이고, "
        "괄호 안은 여기서 서비스 중인 모델입니다."
    ),
    "how_dia_tokens": "텍스트 토큰",
    "how_dia_noise": "노이즈 잠재",
    "how_dia_patches": "2×2 패치 → 토큰",
    "how_dia_pooled": "풀링 벡터 + t",
    "how_dia_time_only": "t만 (풀링 텍스트 없음)",
    "how_dia_double": "이중 스트림 블록 {count}개",
    "how_dia_double_what": "텍스트와 이미지가 각자의 가중치",
    "how_dia_joint": "둘을 함께 보는 통합 어텐션 하나",
    "how_dia_single": "단일 스트림 블록 {count}개",
    "how_dia_single_what": "텍스트 + 이미지를 한 시퀀스로, 공유 가중치",
    "how_dia_out": "이미지 토큰 → 속도 v",
    "how_dia_width": "너비 {width} · 어텐션 헤드 {heads}개",
    "how_dia_legend": "{name}. 괄호 안: 여기서 서비스 중인 {loaded}. 노란 상자가 모든 블록을 변조합니다.",
    "how_blocks_md": (
        "**이중 스트림 블록**({name}에 {double}개, 블록당 파라미터 {double_each})은 텍스트와 이미지 토큰에 "
        "각자의 투영과 MLP를 주되 어텐션은 둘을 함께 한 번 계산하므로 정보가 양방향으로 흐릅니다. 그다음 "
        "**단일 스트림 블록**({single}개, 블록당 {single_each})은 텍스트와 이미지를 한 시퀀스로 "
        "보고 가중치를 공유합니다. 두 스트림이 충분히 정보를 나눈 뒤라 더 저렴합니다. {name}의 "
        "트랜스포머 파라미터는 {total}이고, {loaded}는 이중 스트림 {l_double}개, 단일 스트림 "
        "{l_single}개, 파라미터 {l_total}입니다."
    ),
    "how_encoders_title": "### 두 텍스트 인코더, 두 역할",
    "how_encoders_two_md": (
        "**{pooled}**(파라미터 {pooled_size})는 프롬프트 전체에 풀링 벡터 하나를 줍니다. 타임스텝과 함께 "
        "모든 블록의 스케일과 시프트를 정하는 변조(modulation)로 쓰여 그림 전체를 이끌 뿐, 어텐션 대상은 "
        "아닙니다. **{tokens}**({tokens_size})는 토큰마다 벡터를 하나씩, 최대 {length}개 줍니다. 이것이 "
        "이미지 토큰이 어텐션하는 텍스트 토큰이며, 챕터는 글자 렌더링을 이 인코더의 공으로 봅니다. "
        "파이프라인은 `prompt`를 CLIP에, `prompt_2`를 T5에 넣습니다(둘 다 주지 않으면 같은 글). 페이지 끝의 "
        "절제 실험이 각각만으로 실행합니다."
    ),
    "how_encoders_one_md": (
        "이 모델의 텍스트 인코더는 **{tokens}**(파라미터 {tokens_size}) 하나입니다. 세 층의 은닉 상태가 "
        "이미지가 어텐션하는 텍스트 토큰이 됩니다(최대 {length}개, 프롬프트는 채팅 템플릿으로 감쌈). 풀링 "
        "텍스트 벡터는 없으며 블록은 타임스텝만으로 변조됩니다."
    ),
    "how_tokens_label": "토큰 (인코더와 역할별)",
    "how_counts": "토큰 수",
    "how_role_attended": "어텐션 대상 토큰",
    "how_role_pooled": "풀링 벡터",
    "how_image_tokens": "이미지 토큰",
    "how_rope_title": "### RoPE: 각 토큰의 위치",
    "how_rope_md": (
        "어텐션 헤드마다 {head_dim}개 차원을 위치 축에 나눠 씁니다: {axes}. 토큰은 축마다 위치를 가지며 "
        "RoPE가 그 위치만큼 쿼리와 키를 회전시키므로, 어텐션은 상대 위치를 보고 학습된 위치 표 없이 어떤 "
        "그림 크기에도 맞춰집니다. 이미지 토큰은 행과 열을 위치로 갖습니다. FLUX.1의 텍스트 토큰은 모두 "
        "0에 있고, FLUX.2는 텍스트 축에서 텍스트 토큰마다 자리를 줍니다. 인덱스 축은 참조 이미지를 "
        "구분합니다(만드는 그림은 0)."
    ),
    "how_rope_axis_index": "인덱스",
    "how_rope_axis_height": "높이",
    "how_rope_axis_width": "너비",
    "how_rope_axis_text": "텍스트",
    "how_distill_md": (
        "### 디스틸레이션: 적은 스텝과 많은 스텝\n"
        "schnell은 적대적 디스틸레이션으로 1~4스텝에 끝나도록, dev는 가이던스 디스틸레이션으로 스텝마다 "
        "가이던스 없는 두 번째 계산 없이 약 28스텝에 프롬프트를 따르도록 학습되었습니다. 고른 모델의 "
        "계열을 각자의 설정으로 실행하고, 가이던스가 있는 모델은 가이던스 없이(가장 낮은 값) 한 번 더 "
        "실행합니다. 그래프는 스텝마다 x₀가 최종 그림과 아직 얼마나 다른지 보여 줍니다."
    ),
    "how_distill_run_button": "디스틸 모델과 가이던스 모델 비교",
    "how_distill_run": "{name} · {steps}스텝 · 가이던스 {g:g}",
    "how_distill_x": "예측한 시점의 t (1 = 노이즈)",
    "how_distill_y": "평균 |x₀ − 최종| (0–255)",
    "how_distill_table": "실행",
    "how_distill_tiles": "t ≈ 0.75, 0.5, 0.25와 마지막의 x₀",
    "how_ablation_md": (
        "### 글자는 어느 인코더가 그리나?\n"
        "같은 프롬프트와 시드로 두 인코더 모두, 그다음 하나씩만(다른 인코더는 빈 프롬프트) 실행하고 OCR로 "
        "따옴표 안의 글자를 읽습니다(CER: 문자 오류율, 0이 완벽). 텍스트 인코더가 하나인 모델은 거부됩니다."
    ),
    "how_ablation_run": "인코더 하나씩으로 실행",
    "how_ablation_images": "두 인코더, 그다음 하나씩",
    "how_ablation_table": "OCR이 읽은 글자",
    "how_h_encoder": "인코더",
    "how_h_role": "역할",
    "how_h_tokens": "토큰",
    "how_h_limit": "한도",
    "how_h_cut": "잘림",
    "how_h_encoders": "인코더",
    "how_h_read": "읽은 글자",
    "how_h_CER": "CER",
    "how_h_exact": "정확히 일치",
    "how_h_run": "실행",
    "how_h_seconds": "초",
    "how_h_after_step_1": "1스텝 뒤 |x₀ − 최종|",
    "how_h_halfway": "중간 |x₀ − 최종|",
    "offline_tiny_notice": (
        "**오프라인 미리보기 모델.** 무작위 가중치의 작은 FLUX 모델로 실행 중입니다 "
        "(`FLUX_DEMO_MODELS`로 선택됨). 실제 파이프라인을 쓰지만 그림이 아닌 노이즈가 나옵니다. 학습된 "
        "오프라인 nano 모델을 쓰려면 `FLUX_DEMO_MODELS`를 비워 두고, 실제 모델을 쓰려면 CUDA GPU가 있는 "
        "머신에서 `FLUX_DEMO_MODELS=schnell,dev,klein`을 설정하세요."
    ),
    "offline_notice": (
        "**오프라인 모델.** GPU가 없어서 (또는 `FLUX_DEMO_MODELS`로 선택되어) "
        "**FLUX.1 nano [schnell]**, **[dev]** 모델로 실행 중입니다. "
        "작은 합성 문법으로 처음부터 학습한 작은 FLUX.1 모델이며, "
        "실제 FLUX 파이프라인으로 돌아갑니다. 256×256 그림 두 종류를 그립니다. 간판: "
        '`a sign that says "CAT"` (단어 {word_count}개: {words}). 도형: '
        "`a red star on a blue background` (색: {colors}; 도형: {shapes}). 프롬프트는 영어로 "
        "쓰세요. 그 밖의 프롬프트는 추상적인 모양이 나옵니다. "
        "FLUX.2 [klein]은 무작위 가중치의 소형 모델이라 노이즈가 나옵니다. "
        "실제 FLUX 모델을 쓰려면 CUDA GPU가 있는 머신(또는 ZeroGPU Space)에서 실행하거나 "
        "`FLUX_DEMO_MODELS=schnell,dev,klein`을 설정하세요."
    ),
    "offline_notice_short": "오프라인: FLUX nano 모델, GPU 없음 · 더 보기",
    "offline_tiny_notice_short": "오프라인: 무작위 가중치 모델 · 더 보기",
    "cpu_notice_short": "CPU에서 실제 FLUX 실행: 느림 · 더 보기",
    # --- the visitor pass: hints, notes, table headers, categories, summaries, Stop, downloads ---
    **{
        "tab_generate_short": "텍스트 → 이미지",
        "tab_compare_short": "모델 비교",
        "tab_typography_short": "타이포그래피",
        "custom_size": "직접 입력",
        "scene_info": "이미지를 설명하세요. 글자가 들어갈 자리에 {text}를 쓰거나, 쓰지 않으면 끝에 붙입니다.",
        "expected_info": "이미지에 보여야 할 글자, 최대 500자.",
        "count_info": "모델마다 쓸 프롬프트 수. 고른 카테고리에서 차례로 가져옵니다.",
        "typo_intro": (
            "모델마다 글자를 얼마나 정확히 그리는지 시험합니다. 프롬프트에서 따옴표로 감싼 글자가 이미지에 "
            "보여야 할 글자이고, OCR(RapidOCR)이 이미지를 다시 읽어 비교합니다. **CER**은 문자 오류율(0–1, "
            "낮을수록 좋음)입니다. *정확히 일치*는 모든 글자와 대소문자가 맞아야 하고, *정규화 일치*는 "
            "대소문자·문장부호·공백을 무시합니다.\n\n"
            "**한글과 일본어 가나는 Tesseract가 읽습니다** (한국어·일본어 데이터와 함께 설치된 경우. "
            "*engine* 열이 각 글자를 읽은 OCR을 알려 줍니다). RapidOCR은 한글을 읽지 못하고 가나도 거의 "
            "읽지 못합니다. Tesseract가 없으면 이런 글자는 *채점 안 됨*으로 표시되고 "
            "평균과 비율에서 빠집니다."
        ),
        "typo_offline_note": (
            "오프라인에서는 nano 모델이 문법의 단어 {word_count}개를 씁니다 (예시를 써 보세요). "
            "그 밖의 글자와 소형 klein 모델의 노이즈는 CER이 1에 가깝게 나옵니다."
        ),
        "download_csv": "CSV 내려받기",
        "download_json": "JSON 내려받기",
        "summary": "요약",
        "details_json": "세부 정보 (JSON)",
        "scores": "점수",
        "sweep_stop": "중지",
        "no_result_yet": "먼저 실행하세요. 결과의 시드와 세부 정보가 여기에 나옵니다.",
        "typo_tab_check": "이미지 확인",
        "check_intro": (
            "아무 이미지나 올려 이 앱의 보이지 않는 워터마크(또는 Black Forest Labs의 워터마크), C2PA "
            "매니페스트(콘텐츠 자격 증명), AI 생성 이미지임을 밝히는 디지털 소스 유형이 있는지 확인하세요. "
            "이 앱이 만든 PNG라면 생성 설정과 그 설정을 되살리는 링크도 보여 줍니다. 자르기, 강한 압축, "
            "화면 캡처는 워터마크를 지울 수 있으므로 표시가 없다고 해서 아무것도 증명되지 않습니다."
        ),
        "check_image": "확인할 이미지",
        "check_run": "확인",
        "check_report": "찾은 표시 (JSON)",
        "cpu_notice": (
            "**CPU에서 실제 FLUX 모델 실행 중.** GPU가 없어 이미지 한 장에 몇 분이 걸리고 모델에 수십 GB의 "
            "메모리가 필요합니다 (bf16으로 실행해 절반으로 줄임). "
            "CUDA GPU나 Apple Silicon Mac이 훨씬 빠릅니다."
        ),
    },
}


def _add_generated_text() -> None:
    """Per model and per suite category text, built from the registry and the suite so that a new
    model or category needs no new entry here: model labels, guidance notes and category names."""
    from flux_demo.models import MODELS
    from flux_demo.offline.nano import load_grammar
    from flux_demo.typography.suite import ORDER

    for key, spec in MODELS.items():
        EN[f"model_label.{key}"] = spec.label
        EN[f"model_name.{key}"], KO[f"model_name.{key}"] = spec.name, model_name(spec.name, "ko")
        KO[f"model_label.{key}"] = f"{model_name(spec.name, 'ko')} — {spec.default_steps}스텝, {spec.license}"
        EN[f"guidance_note.{key}"] = spec.guidance_note().render("en")
        KO[f"guidance_note.{key}"] = spec.guidance_note().render("ko")
    grammar = load_grammar()  # what the offline nano models can draw, from examples/nano_vocabulary.json
    lists = {
        "word_count": len(grammar.words),
        "words": ", ".join(grammar.words),
        "colors": ", ".join(grammar.colors),
        "shapes": ", ".join(grammar.shapes),
    }
    for table in (EN, KO):
        for key in ("offline_notice", "typo_offline_note"):
            table[key] = table[key].format(**lists)
    for category in ORDER:
        EN[f"category.{category}"] = category
        KO[f"category.{category}"] = CATEGORIES_KO[category]


CATEGORIES_KO = {
    "single words": "한 단어",
    "signs and storefronts": "간판과 가게 앞",
    "neon": "네온",
    "posters": "포스터",
    "numbers and symbols": "숫자와 기호",
    "long sentences": "긴 문장",
    "multi-line text": "여러 줄 글자",
    "mixed case": "대소문자 섞기",
    "handwriting and chalk": "손글씨와 분필",
    "logos": "로고",
    "non-Latin scripts": "라틴 문자 외 문자",
    "nano signs": "나노 모델 간판",
}

_add_generated_text()
I18N = gr.I18n(en=EN, ko=KO)


def t(key: str):
    """The translatable text for `key` (rendered in the browser's language)."""
    if key not in EN:
        raise KeyError(f"no UI text for {key!r}")
    return I18N(key)


# --- the language of a request ---------------------------------------------------------------------

# Gradio's page marks every event it sends with this header ("app"); `gradio_client`, the JS client used
# as a library and MCP send "api" and a plain REST call sends none (gradio/templates/frontend Blocks,
# gradio_client/client.py, gradio/mcp.py). Only the page's own requests are answered in the visitor's
# language: an API or MCP caller gets English whatever its Accept-Language, so scripts parse one language.
PAGE_HEADER = ("x-gradio-user", "app")


def visitor_language(request=None) -> str:
    """ "ko" or "en" for what the server says in reply to `request` (default: the request of the Gradio
    event running in this thread): for the page, the first of them in its Accept-Language (by q-value);
    for API and MCP callers, and outside a request, "en"."""
    if request is None:
        from gradio.context import LocalContext

        request = LocalContext.request.get(None)
    headers = getattr(request, "headers", None) or {}
    name, value = PAGE_HEADER
    if headers.get(name) != value:
        return "en"
    ranked = []
    for position, part in enumerate(str(headers.get("accept-language", "")).split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        ranked.append((-quality, position, tag.strip().lower().split("-")[0]))
    for _, _, language in sorted(ranked):
        if language in LANGUAGES:
            return language
    return "en"


def say(message: Message | str, language: str | None = None, **params) -> str:
    """A catalog `Message`, or the message `code` with `params`, in `language` (default: the visitor's)."""
    if not isinstance(message, Message):
        message = Message(message, **params)
    return message.render(language or visitor_language())


def model_title(key: str, language: str | None = None) -> str:
    """The display name of the model `key` in `language` (default: the visitor's), as the model
    dropdowns show it: "FLUX.1 nano [schnell] (오프라인)" on a Korean page."""
    from flux_demo.models import get_spec

    return model_name(get_spec(key).name, language or visitor_language())
