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
        "Text-to-image with FLUX.1 [schnell], FLUX.1 [dev] and FLUX.2 [klein] on 🤗 diffusers, "
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
        "FLUX walks a straight path from noise to the image (rectified flow). At every step the "
        "transformer predicts a velocity v, and x₀ = x_t − σ·v is the clean image it has in mind. "
        "Run one prompt and watch it, step by step; every figure below is measured from the loaded "
        "model and this run."
    ),
    "how_run": "Run and record every step",
    "how_trajectory": (
        "### Trajectory\nThe predicted clean image x₀ and the noisy latents x_t after each step (a "
        "linear latent→RGB map at 1/8 size)."
    ),
    "how_predicted": "Predicted clean image x₀, one per step",
    "how_noisy": "Noisy latents x_t, one per step",
    "how_step": "Step",
    "how_predicted_one": "x₀ at this step",
    "how_noisy_one": "x_t at this step",
    "how_caption": "Step · timestep t · σ before→after · seconds",
    "how_schedule": (
        "### Schedule\nσ over the run. FLUX.1 [dev] shifts its schedule by image size (more time at "
        "high noise for bigger images); FLUX.1 [schnell] does not. Each model runs its default "
        "steps: schnell's 4 over dev's 28."
    ),
    "how_schedule_plot": "σ against progress through the run",
    "how_tokens": (
        "### Tokens\nThe prompt as the text encoders see it. Text in quotes is what the model tries "
        "to render in the picture. The transformer attends over the text tokens and (H/16)·(W/16) "
        "image tokens."
    ),
    "how_tokens_label": "Tokens, coloured by text encoder",
    "how_counts": "Token counts (used, limit, cut off)",
    "how_architecture": (
        "### Architecture\nRead from the loaded modules: double-stream and single-stream blocks, "
        "width, heads, parameters per part, and the components shared with another loaded model."
    ),
    "how_architecture_label": "Loaded model",
    "how_side_by_side": "Two runs side by side (aligned by σ)",
    "how_prompt_b": "Prompt B",
    "how_model_b": "Model B (runs its default steps)",
    "how_side_run": "Run both",
    "how_pairs": "A and B at the nearest σ",
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
        "cpu_notice": (
            "**Real FLUX models on the CPU.** No GPU was found, so each image takes minutes and the models "
            "need tens of GB of RAM (they run in bf16 to halve it). A CUDA GPU or an Apple Silicon Mac is "
            "far faster."
        ),
    },
}

KO = {
    "description": (
        "🤗 diffusers로 FLUX.1 [schnell], FLUX.1 [dev], FLUX.2 [klein]을 실행하는 텍스트→이미지 데모. "
        "OCR 점수로 글자 렌더링을 시험하고 모델을 나란히 비교합니다."
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
        "FLUX는 노이즈에서 이미지까지 곧은 경로를 걷습니다(정류 흐름, rectified flow). 매 스텝 "
        "트랜스포머가 속도 v를 예측하고, x₀ = x_t − "
        "σ·v 가 모델이 그리고 있는 깨끗한 이미지입니다. 프롬프트 하나를 실행해 스텝마다 "
        "지켜보세요. 아래 모든 수치는 불러온 모델과 이번 실행에서 직접 측정한 "
        "값입니다."
    ),
    "how_run": "실행하고 모든 스텝 기록",
    "how_trajectory": (
        "### 궤적\n스텝마다 예측한 깨끗한 이미지 x₀와 노이즈 잠재 x_t (1/8 크기, 선형 잠재→RGB 변환)."
    ),
    "how_predicted": "예측한 깨끗한 이미지 x₀ (스텝마다)",
    "how_noisy": "노이즈 잠재 x_t (스텝마다)",
    "how_step": "스텝",
    "how_predicted_one": "이 스텝의 x₀",
    "how_noisy_one": "이 스텝의 x_t",
    "how_caption": "스텝 · 타임스텝 t · σ 이전→이후 · 초",
    "how_schedule": (
        "### 스케줄\n실행 동안의 σ. FLUX.1 [dev]는 이미지 크기에 따라 스케줄을 이동시키고(큰 "
        "이미지일수록 높은 노이즈에 더 오래 머묾), FLUX.1 "
        "[schnell]은 그렇지 않습니다. 각 모델은 기본 스텝 수로 실행합니다: schnell 4스텝과 dev 28스텝."
    ),
    "how_schedule_plot": "실행 진행도에 따른 σ",
    "how_tokens": (
        "### 토큰\n텍스트 인코더가 보는 프롬프트입니다. 따옴표 안의 글자가 그림에 그려지는 "
        "글자입니다. 트랜스포머는 텍스트 토큰과 (H/16)·(W/16)개의 이미지 "
        "토큰을 함께 봅니다."
    ),
    "how_tokens_label": "토큰 (텍스트 인코더별 색)",
    "how_counts": "토큰 수 (사용, 한도, 잘림)",
    "how_architecture": (
        "### 구조\n불러온 모듈에서 읽은 값: 이중 스트림/단일 스트림 블록 수, 너비, 헤드 수, "
        "부분별 파라미터 수, 다른 모델과 공유하는 구성 요소."
    ),
    "how_architecture_label": "불러온 모델",
    "how_side_by_side": "두 실행 나란히 보기 (σ 기준 정렬)",
    "how_prompt_b": "프롬프트 B",
    "how_model_b": "모델 B (기본 스텝 수로 실행)",
    "how_side_run": "둘 다 실행",
    "how_pairs": "가장 가까운 σ의 A와 B",
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
    from flux_demo.typography.suite import CATEGORIES

    for key, spec in MODELS.items():
        EN[f"model_label.{key}"] = spec.label
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
    for category in CATEGORIES:
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
