"""Fine-tuning on feedback: a two-tower head over frozen modality vectors, trained with BCE."""
